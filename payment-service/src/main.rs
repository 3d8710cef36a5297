fn main() -> std::process::ExitCode {
    common::host::main(payment_service::SERVICE, payment_service::startup::run)
}
