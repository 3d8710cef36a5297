fn main() -> std::process::ExitCode {
    common::host::main(notification_service::startup::run)
}
