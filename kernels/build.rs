//! Makes cargo regenerate the kernels when a file is added to or removed from `equations/`
//! (the macro lists the folder; edits to a listed file are tracked through `include_str!`).

fn main() {
    println!("cargo:rerun-if-changed=../equations");
}
