//! With the `transformer` feature, records where libtorch is (an rpath to `$LIBTORCH/lib`) so the binary starts
//! from any shell, without `LD_LIBRARY_PATH` or a sourced `scripts/libtorch.sh`. Without the feature it does
//! nothing: the default binary links no libtorch.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_TRANSFORMER").is_none() {
        return;
    }
    // torch-sys itself fails the build without LIBTORCH (or a Python torch it can find); here we only add the
    // run-time search path, for the binaries of this package (tests run the binary, so they get it too).
    let Some(root) = std::env::var_os("LIBTORCH") else {
        println!(
            "cargo:warning=LIBTORCH is not set: the transformer binary will need LD_LIBRARY_PATH at run time \
             (eval \"$(scripts/libtorch.sh)\" before building records the path in the binary)"
        );
        return;
    };
    let lib = std::path::Path::new(&root).join("lib");
    let lib = lib.canonicalize().unwrap_or(lib);
    // RUNPATH (the linker's default with --enable-new-dtags) still lets LD_LIBRARY_PATH override it, so a user
    // can point one binary at another libtorch of the same version.
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{}", lib.display());
}
