fn main() -> std::process::ExitCode {
    common::host::main(
        notification_service::SERVICE,
        notification_service::startup::run,
    )
}
