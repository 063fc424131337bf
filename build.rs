//! Build script: only tells cargo to rebuild when an embedded SQL migration changes
//! (`sqlx::migrate!` in `src/coordinator/store` embeds `migrations/` at compile time, and cargo
//! would not otherwise notice a new or edited migration file).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
