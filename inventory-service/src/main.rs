fn main() -> std::process::ExitCode {
    common::host::main(inventory_service::SERVICE, inventory_service::startup::run)
}
