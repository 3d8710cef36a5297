//! Rebuild when a migration is added: the calibration's scratch schemas embed every
//! service's migrations with `sqlx::migrate!`.
fn main() {
    for folder in ["order", "inventory", "payment", "notification"] {
        println!("cargo:rerun-if-changed=../migrations/{folder}");
    }
}
