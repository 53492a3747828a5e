//! Every shipped shader parses and validates with naga exactly as shipped, and every kernel has
//! its three files: shader, launcher, CPU reference.

use lowbit::kernels::quantize_fused;
use lowbit::shaders::{source, COMMON, KERNELS, LOOPS_UNBOUNDED, NEEDS_FEATURES, UNCHECKED};
use std::path::Path;

/// What naga may assume of the device: its defaults, plus cooperative matrices, f16 and subgroups
/// for the kernels that need them (lowbit builds those only where the adapter has them).
fn capabilities(name: &str) -> naga::valid::Capabilities {
    use naga::valid::Capabilities as C;
    if NEEDS_FEATURES.contains(&name) {
        C::default() | C::COOPERATIVE_MATRIX | C::SHADER_FLOAT16 | C::SUBGROUP
    } else {
        C::default()
    }
}

fn validator(name: &str) -> naga::valid::Validator {
    let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities(name));
    if NEEDS_FEATURES.contains(&name) {
        v.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
        v.subgroup_operations(naga::valid::SubgroupOperationSet::all());
    }
    v
}

fn validate(name: &str, src: &str) {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{name}: WGSL parse error:\n{}", e.emit_to_string(src)));
    let mut v = validator(name);
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
fn every_kernel_compiled_without_loop_counters_says_why_its_loops_end() {
    const NOTE: &str = "Loops left unbounded (lowbit::shaders::LOOPS_UNBOUNDED";
    for name in LOOPS_UNBOUNDED {
        let k = KERNELS
            .iter()
            .find(|k| k.name == *name)
            .unwrap_or_else(|| panic!("LOOPS_UNBOUNDED names {name}, no kernel"));
        assert!(
            k.body.contains(NOTE),
            "shaders/{name}.wgsl runs without loop counters but its header does not say why"
        );
        assert!(!UNCHECKED.contains(name), "{name} is in both lists (UNCHECKED already drops the loop counters)");
    }
    for k in KERNELS {
        assert!(
            !k.body.contains(NOTE) || LOOPS_UNBOUNDED.contains(&k.name),
            "shaders/{}.wgsl says it runs without loop counters but lowbit::shaders::LOOPS_UNBOUNDED does not list it",
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

/// Whether `kernel` includes common/teams.wgsl (and so declares its TEAM and RUN).
fn includes_teams(kernel: &str) -> bool {
    lowbit::shaders::KERNELS.iter().any(|k| k.name == kernel && k.includes.contains(&"teams"))
}

/// The values each pipeline constant takes in the launchers (`src/kernels/*.rs`), by kernel.
fn constant_values(kernel: &str, name: &str) -> Vec<f64> {
    match (kernel, name) {
        // Every format id: int8, int4, e4m3, e5m2, log4, int3, int2.
        (_, "FORMAT") => (0..7).map(f64::from).collect(),
        // Tile::tpt().min(4): the 32×32 tile's 2, the 64×64 and 128×128 tiles' 4.
        (_, "TPT") => vec![2.0, 4.0],
        ("gemm_int" | "gemm_int_lanes" | "gemm_int_col2im" | "gemm_int_coop", "FMT_A" | "FMT_B") => {
            vec![0.0, 1.0, 4.0, 5.0, 6.0, 7.0, 9.0, 10.0]
        }
        ("gemm_fp8" | "gemm_fp8_lanes" | "gemm_fp8_col2im" | "gemm_fp8_coop", "FMT_A" | "FMT_B") => vec![2.0, 3.0, 8.0],
        (_, "WHOLE_K" | "B_CODES" | "TRANS_A" | "TRANS_B" | "SWAP") => vec![0.0, 1.0],
        // gemm_int_col2im's general pipeline and its single-fold one (PackedCol2im::pipeline_for).
        ("gemm_int_col2im", "ONE_FOLD") => vec![0.0, 1.0],
        // quantize_both's short-row path (QuantizeBoth::short_rows): 0 (off) and every length.
        ("quantize_both", "X_ROW_V4") => (0..=lowbit::kernels::quantize_both::SHORT_ROW_VEC4S).map(f64::from).collect(),
        ("quantize_both", "X_STOCHASTIC") => vec![0.0, 1.0],
        // TinyScript's code widths (src/tinyscript.rs: 2 to 8 bits).
        ("gemm_levels_lanes" | "gemm_levels_col2im", "A_BITS" | "B_BITS") => (2..=8).map(f64::from).collect(),
        // gemm_levels_lanes::panel's tiles: 2 up to PANEL_MAX_TILES (loop bounds only).
        ("gemm_levels_lanes", "TILES") => vec![2.0, f64::from(lowbit::kernels::gemm_levels_lanes::PANEL_MAX_TILES)],
        // gemm_int_coop::GemmIntCoop::size (gemm_fp8_coop's too): lavapipe's 8 lanes and NVIDIA's 32, and the workgroups
        // they give ((64 / 2·size)² subgroups: 16 of 8 lanes for 8×8, 4 of 32 for 16×16; 16 of 32
        // for 8×8 on 32-lane subgroups).
        ("gemm_int_coop" | "gemm_fp8_coop", "SG") => vec![8.0, 32.0],
        ("gemm_int_coop" | "gemm_fp8_coop", "WG") => vec![128.0, 512.0],
        // Im2colQuantize's main_both_v4 with and without main_maxima_v4's maxima.
        ("im2col_quantize", "FROM_MAXIMA") => vec![0.0, 1.0],
        // Its main_rows and main_rows_v4 writing cols or not.
        ("im2col_quantize", "TEAM_COLS") => vec![0.0, 1.0],
        // Its main_tiles_v4 for each pair of the two sides' roundings (bit 0 cols', bit 1 L's).
        ("im2col_quantize", "TILE_STOCHASTIC") => vec![0.0, 1.0, 2.0, 3.0],
        // Its main_codes_short's kernel and channels (Im2colQuantize::short_rows: any whose rows of
        // cols hold at most 32 values, channels not in fours): a sample, from a 1×1 kernel of one
        // channel (the shortest row) to MNIST's 5×5 and CIFAR's 3 channels.
        ("im2col_quantize", "SHORT_KH" | "SHORT_KW") => vec![1.0, 5.0],
        ("im2col_quantize", "SHORT_C") => vec![1.0, 3.0],
        // QuantizeFused::thread_workgroup_size on each reduce path.
        ("quantize_fused", "THREAD_WG") => [quantize_fused::ReducePath::Tree, quantize_fused::ReducePath::PerThread]
            .map(|p| f64::from(quantize_fused::QuantizeFused::thread_workgroup_size(p)))
            .to_vec(),
        // batchnorm::V4_ROWS.
        ("batchnorm", "V4_ROWS") => vec![8.0],
        // 1 on a GPU, hadamard_quantize_transpose::CPU_BLOCKS_ACROSS on a CPU adapter.
        ("hadamard_quantize_transpose", "BLOCKS_ACROSS") => {
            vec![1.0, f64::from(lowbit::kernels::hadamard_quantize_transpose::CPU_BLOCKS_ACROSS)]
        }
        // common/teams.wgsl's constants, in every kernel that includes it, as VecPath::entry sets them.
        (k, "RUN") if includes_teams(k) => vec![f64::from(lowbit::kernels::TEAM_RUN)],
        (k, "TEAM") if includes_teams(k) => vec![f64::from(lowbit::kernels::TEAM)],
        (k, n) => panic!("{k} declares the pipeline constant {n}, which this test does not know: add its values"),
    }
}

/// Every combination of the constants a module declares.
fn constant_sets(kernel: &str, module: &naga::Module) -> Vec<naga::back::PipelineConstants> {
    let mut sets = vec![naga::back::PipelineConstants::default()];
    for (_, o) in module.overrides.iter() {
        let name = o.name.clone().expect("lowbit's overrides are named");
        let values = constant_values(kernel, &name);
        let mut next = Vec::new();
        for s in &sets {
            for &v in &values {
                let mut s = s.clone();
                s.insert(name.clone(), v);
                next.push(s);
            }
        }
        sets = next;
    }
    sets
}

#[test]
fn every_pipeline_translates_to_msl_hlsl_and_spirv() {
    // What wgpu does on Metal, DX12 and Vulkan: the pipeline's constants substituted
    // (`process_overrides`), then naga's back end for the entry point, with the bounds checks and
    // loop counters the launcher asks for (no checks for lowbit::shaders::UNCHECKED, no loop
    // counters for it and lowbit::shaders::LOOPS_UNBOUNDED). A shader that no Metal or DX12
    // driver could be given fails here, though only Vulkan runs in CI.
    use naga::back::{hlsl, msl, spv};
    use naga::proc::{BoundsCheckPolicies, BoundsCheckPolicy};
    let mut translated = 0;
    let mut failures = Vec::new();
    for k in KERNELS {
        let src = source(k.name).unwrap();
        let module = naga::front::wgsl::parse_str(&src).unwrap();
        let info = validator(k.name).validate(&module).unwrap();
        // Cooperative matrices of 16×16 exist only in SPIR-V (Vulkan's VK_KHR_cooperative_matrix);
        // wgpu offers them on Metal as 8×8 simdgroup matrices only, and not on DX12.
        let spirv_only = ["peak_coop", "gemm_int_coop", "gemm_fp8_coop"].contains(&k.name);
        // Subgroup operations need shader model 6 on DX12 (wave intrinsics).
        let needs_sm6 = NEEDS_FEATURES.contains(&k.name);
        let policy =
            if UNCHECKED.contains(&k.name) { BoundsCheckPolicy::Unchecked } else { BoundsCheckPolicy::Restrict };
        let checks = BoundsCheckPolicies { index: policy, buffer: policy, image_load: policy, binding_array: policy };
        let bound_loops = !UNCHECKED.contains(&k.name) && !LOOPS_UNBOUNDED.contains(&k.name);
        let entries: Vec<String> = module.entry_points.iter().map(|e| e.name.clone()).collect();
        for constants in constant_sets(k.name, &module) {
            for entry in &entries {
                let what = format!("{}::{entry} {constants:?}", k.name);
                let stage = (naga::ShaderStage::Compute, entry.as_str());
                let (m, i) =
                    match naga::back::pipeline_constants::process_overrides(&module, &info, Some(stage), &constants) {
                        Ok(r) => r,
                        Err(e) => {
                            failures.push(format!("{what}: constants: {e:?}"));
                            continue;
                        }
                    };
                for lang in if spirv_only { vec![] } else { vec![(2, 1), (3, 0)] } {
                    let options = msl::Options {
                        lang_version: lang,
                        bounds_check_policies: checks,
                        force_loop_bounding: bound_loops,
                        ..Default::default()
                    };
                    let pipeline = msl::PipelineOptions {
                        entry_point: Some((naga::ShaderStage::Compute, entry.clone())),
                        ..Default::default()
                    };
                    if let Err(e) = msl::write_string(&m, &i, &options, &pipeline) {
                        failures.push(format!("{what}: MSL {lang:?}: {e:?}"));
                    }
                }
                let models = match (spirv_only, needs_sm6) {
                    (true, _) => vec![],
                    (false, true) => vec![hlsl::ShaderModel::V6_4],
                    (false, false) => vec![hlsl::ShaderModel::V5_1, hlsl::ShaderModel::V6_4],
                };
                for model in models {
                    let options = hlsl::Options {
                        shader_model: model,
                        restrict_indexing: policy == BoundsCheckPolicy::Restrict,
                        force_loop_bounding: bound_loops,
                        ..Default::default()
                    };
                    let pipeline =
                        hlsl::PipelineOptions { entry_point: Some((naga::ShaderStage::Compute, entry.clone())) };
                    let mut out = String::new();
                    if let Err(e) = hlsl::Writer::new(&mut out, &options, &pipeline).write(&m, &i, None) {
                        failures.push(format!("{what}: HLSL {model:?}: {e:?}"));
                    }
                }
                let options = spv::Options {
                    lang_version: (1, 3),
                    bounds_check_policies: checks,
                    force_loop_bounding: bound_loops,
                    ..Default::default()
                };
                let pipeline =
                    spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: entry.clone() };
                if let Err(e) = spv::write_vec(&m, &i, &options, Some(&pipeline)) {
                    failures.push(format!("{what}: SPIR-V: {e:?}"));
                }
                translated += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} translations failed; first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(6)]
    );
    eprintln!("{translated} pipelines translated to MSL 2.1 and 3.0, HLSL SM 5.1 and 6.4, SPIR-V 1.3");
    assert!(translated > 300, "{translated} pipelines");
}
