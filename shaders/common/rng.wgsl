// Mirror of src/rng.rs: counter-based randomness, identical bit for bit on host and device.

fn lowbias32(x0: u32) -> u32 {
    var x = x0;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

fn rng_key(seed: u32, stream: u32) -> u32 {
    return lowbias32(lowbias32(seed) ^ stream);
}

fn rng_draw(key: u32, index: u32) -> u32 {
    return lowbias32(lowbias32(index) ^ key);
}

fn rng_draw24(key: u32, index: u32) -> u32 {
    return rng_draw(key, index) >> 8u;
}
