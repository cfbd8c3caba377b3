//! Seeded random draws for simulations: the detector's calibration tests and `flashpoint eval-detect`.
//! Deterministic across platforms (integer generator, f64 arithmetic only), so a seed names a result.

/// SplitMix64: small, fast, and good enough for simulation.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    pub fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 40.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let l = (-mean).exp();
        let (mut k, mut p) = (0u64, 1.0);
        loop {
            p *= self.uniform();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }

    /// Gamma(shape, scale 1), Marsaglia–Tsang.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            return self.gamma(shape + 1.0) * self.uniform().max(1e-300).powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Negative binomial with the given mean and relative excess variance `v` (var = mean + v·mean²).
    pub fn neg_binomial(&mut self, mean: f64, v: f64) -> u64 {
        if v <= 0.0 {
            return self.poisson(mean);
        }
        let k = 1.0 / v;
        let g = self.gamma(k);
        self.poisson(mean * g / k)
    }

    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if n > 200 {
            let m = n as f64 * p;
            return (m + (m * (1.0 - p)).sqrt() * self.normal()).round().clamp(0.0, n as f64) as u64;
        }
        (0..n).filter(|_| self.uniform() < p).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_have_the_right_moments() {
        let mut r = Rng::new(7);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| r.neg_binomial(5.0, 0.2) as f64).collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
        assert!((m - 5.0).abs() < 0.1, "{m}");
        assert!((var - (5.0 + 0.2 * 25.0)).abs() < 0.6, "{var}");
        let b: u64 = (0..1000).map(|_| r.binomial(10, 0.3)).sum();
        assert!((b as f64 / 10_000.0 - 0.3).abs() < 0.02);
    }
}
