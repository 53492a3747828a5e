// The 16-point Walsh–Hadamard butterflies on four vectors at once, shared by hadamard (its
// per-thread entries) and hadamard_quantize_transpose: for h = 1, 2, 4, 8, the pairs (i, i + h)
// become (u + v, u - v), in this order (the reference's and the workgroup tree's: the same bits);
// unnormalized. Unrolled on named values, so that they stay in registers (a private array indexed
// in loops went through memory on lavapipe).

// One butterfly: (u, v) -> (u + v, u - v).
fn bf(u: ptr<function, vec4<f32>>, v: ptr<function, vec4<f32>>) {
    let s = *u + *v;
    let d = *u - *v;
    *u = s;
    *v = d;
}

fn butterflies16(x: array<vec4<f32>, 16>) -> array<vec4<f32>, 16> {
    var a0 = x[0];
    var a1 = x[1];
    var a2 = x[2];
    var a3 = x[3];
    var a4 = x[4];
    var a5 = x[5];
    var a6 = x[6];
    var a7 = x[7];
    var a8 = x[8];
    var a9 = x[9];
    var a10 = x[10];
    var a11 = x[11];
    var a12 = x[12];
    var a13 = x[13];
    var a14 = x[14];
    var a15 = x[15];
    bf(&a0, &a1); bf(&a2, &a3); bf(&a4, &a5); bf(&a6, &a7);
    bf(&a8, &a9); bf(&a10, &a11); bf(&a12, &a13); bf(&a14, &a15);
    bf(&a0, &a2); bf(&a1, &a3); bf(&a4, &a6); bf(&a5, &a7);
    bf(&a8, &a10); bf(&a9, &a11); bf(&a12, &a14); bf(&a13, &a15);
    bf(&a0, &a4); bf(&a1, &a5); bf(&a2, &a6); bf(&a3, &a7);
    bf(&a8, &a12); bf(&a9, &a13); bf(&a10, &a14); bf(&a11, &a15);
    bf(&a0, &a8); bf(&a1, &a9); bf(&a2, &a10); bf(&a3, &a11);
    bf(&a4, &a12); bf(&a5, &a13); bf(&a6, &a14); bf(&a7, &a15);
    return array<vec4<f32>, 16>(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
}
