fn main() -> std::process::ExitCode {
    common::host::main(order_service::SERVICE, order_service::startup::run)
}
