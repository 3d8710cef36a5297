fn main() -> std::process::ExitCode {
    common::host::main(inventory_service::startup::run)
}
