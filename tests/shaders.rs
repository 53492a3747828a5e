//! Every shipped shader parses and validates with naga exactly as shipped, and every kernel has
//! its three files: shader, launcher, CPU reference.

use lowbit::shaders::{source, COMMON, KERNELS, UNCHECKED};
use std::path::Path;

fn validate(name: &str, src: &str) {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{name}: WGSL parse error:\n{}", e.emit_to_string(src)));
    let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default());
    if let Err(e) = v.validate(&module) {
        panic!("{name}: naga validation failed:\n{}", e.emit_to_string(src));
    }
}

#[test]
fn every_kernel_unit_validates_with_naga() {
    for k in KERNELS {
        validate(k.name, &source(k.name).unwrap());
    }
}

#[test]
fn every_shader_has_a_launcher_and_a_reference() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut on_disk = Vec::new();
    for entry in std::fs::read_dir(root.join("shaders")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "wgsl") {
            on_disk.push(p.file_stem().unwrap().to_string_lossy().to_string());
        }
    }
    on_disk.sort();
    let mut listed: Vec<String> = KERNELS.iter().map(|k| k.name.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "shaders/*.wgsl and lowbit::shaders::KERNELS disagree");
    for name in &on_disk {
        assert!(
            root.join(format!("src/kernels/{name}.rs")).exists(),
            "shader {name} has no launcher src/kernels/{name}.rs"
        );
        assert!(
            root.join(format!("src/reference/{name}.rs")).exists(),
            "shader {name} has no CPU reference src/reference/{name}.rs"
        );
    }
    let mut common_on_disk: Vec<String> = std::fs::read_dir(root.join("shaders/common"))
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().to_string())
        .collect();
    common_on_disk.sort();
    let mut common_listed: Vec<String> = COMMON.iter().map(|(n, _)| n.to_string()).collect();
    common_listed.sort();
    assert_eq!(common_on_disk, common_listed, "shaders/common/*.wgsl and lowbit::shaders::COMMON disagree");
}

#[test]
fn every_kernel_compiled_unchecked_says_why_its_indices_stay_in_range() {
    const NOTE: &str = "Compiled without naga's runtime checks";
    for name in UNCHECKED {
        let k = KERNELS.iter().find(|k| k.name == *name).unwrap_or_else(|| panic!("UNCHECKED names {name}, no kernel"));
        assert!(k.body.contains(NOTE), "shaders/{name}.wgsl is compiled unchecked but its header does not say why");
    }
    for k in KERNELS {
        assert!(
            !k.body.contains(NOTE) || UNCHECKED.contains(&k.name),
            "shaders/{}.wgsl says it is compiled unchecked but lowbit::shaders::UNCHECKED does not list it",
            k.name
        );
    }
}

#[test]
fn a_broken_shader_is_rejected_by_the_validator() {
    // The check above must be able to fail.
    let bad = "fn f() -> u32 { return 1.0; }";
    let module = naga::front::wgsl::parse_str(bad);
    let failed = match module {
        Err(_) => true,
        Ok(m) => naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default())
            .validate(&m)
            .is_err(),
    };
    assert!(failed);
}
