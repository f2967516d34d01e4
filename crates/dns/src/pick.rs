//! Weighted random choice without replacement, as GeoDNS picks the
//! addresses of one answer: each pick is drawn with probability
//! proportional to weight among those not yet picked.

use rand::Rng;

/// Items with cumulative weights; built once per zone load, read by every
/// query.
#[derive(Debug, Clone, Default)]
pub struct Weighted<T> {
    items: Vec<T>,
    weights: Vec<u32>,
    /// `cum[i]` = sum of `weights[..=i]`.
    cum: Vec<u64>,
    /// How many items have weight (can be picked at all).
    positive: usize,
}

/// Rejection draws per wanted item before switching to the exact linear
/// walk (only needed when a few items hold nearly all the weight).
const REJECTION_TRIES: usize = 8;

impl<T> Weighted<T> {
    /// Items with weights. When every weight is 0 they all count as 1 (as
    /// GeoDNS does); otherwise weight-0 items are never picked.
    pub fn new(entries: impl IntoIterator<Item = (T, u32)>) -> Self {
        let (items, mut weights): (Vec<T>, Vec<u32>) = entries.into_iter().unzip();
        if weights.iter().all(|&w| w == 0) {
            weights.iter_mut().for_each(|w| *w = 1);
        }
        let cum = weights
            .iter()
            .scan(0u64, |sum, &w| {
                *sum += u64::from(w);
                Some(*sum)
            })
            .collect();
        let positive = weights.iter().filter(|&&w| w > 0).count();
        Weighted {
            items,
            weights,
            cum,
            positive,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The item at an index returned by [`Weighted::pick`].
    pub fn get(&self, i: usize) -> &T {
        &self.items[i]
    }

    /// The weight the item at `i` is picked by (all 1 when every weight
    /// was 0).
    pub(crate) fn weight(&self, i: usize) -> u32 {
        self.weights.get(i).copied().unwrap_or(0)
    }

    /// The sum of the weights.
    pub(crate) fn total(&self) -> u64 {
        self.cum.last().copied().unwrap_or(0)
    }

    /// Picks up to `n` distinct items, appending their indices to `out` in
    /// the order drawn. Fewer when fewer have weight.
    pub fn pick<R: Rng + ?Sized>(&self, n: usize, rng: &mut R, out: &mut Vec<usize>) {
        let start = out.len();
        let total = self.total();
        let want = n.min(self.positive);
        if total == 0 || want == 0 {
            return;
        }
        // Drawing from all items and redrawing on a repeat gives each pick
        // the distribution over the items not yet picked: the same as the
        // sequential walk, in O(log n) per draw.
        let mut tries = REJECTION_TRIES * want;
        while out.len() - start < want && tries > 0 {
            tries -= 1;
            let r = rng.random_range(0..total);
            let i = self.cum.partition_point(|&c| c <= r);
            if !out[start..].contains(&i) {
                out.push(i);
            }
        }
        // Exact walk over what is left (rare: heavily skewed weights).
        while out.len() - start < want {
            let picked = &out[start..];
            let left: u64 = total
                - picked
                    .iter()
                    .map(|&i| u64::from(self.weights[i]))
                    .sum::<u64>();
            if left == 0 {
                return;
            }
            let mut r = rng.random_range(0..left);
            let next = (0..self.items.len()).find(|i| {
                if picked.contains(i) {
                    return false;
                }
                let w = u64::from(self.weights[*i]);
                if r < w {
                    true
                } else {
                    r -= w;
                    false
                }
            });
            match next {
                Some(i) => out.push(i),
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn first_pick_follows_weight_share() {
        // 20,000 answers of 4; the first record of each is drawn from all
        // servers, so its share must match the netspeed share.
        let weights = [1000u32, 1000, 500, 500, 250, 250, 100, 100, 50, 50];
        let w = Weighted::new(weights.iter().enumerate().map(|(i, &w)| (i, w)));
        let total: u32 = weights.iter().sum();
        let mut rng = StdRng::seed_from_u64(20_000);
        let mut first = [0u32; 10];
        let mut out = Vec::new();
        for _ in 0..20_000 {
            out.clear();
            w.pick(4, &mut rng, &mut out);
            assert_eq!(out.len(), 4);
            let mut sorted = out.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 4, "without replacement");
            first[out[0]] += 1;
        }
        for (i, &c) in first.iter().enumerate() {
            let want = f64::from(weights[i]) / f64::from(total);
            let got = f64::from(c) / 20_000.0;
            assert!(
                (got - want).abs() <= 0.1 * want,
                "server {i}: share {got:.4}, netspeed share {want:.4}"
            );
        }
    }

    #[test]
    fn one_per_answer_follows_weight_share() {
        let weights = [3000u32, 2000, 1000, 1000, 500, 300, 200];
        let w = Weighted::new(weights.iter().enumerate().map(|(i, &w)| (i, w)));
        let total: u32 = weights.iter().sum();
        let mut rng = StdRng::seed_from_u64(1);
        let mut count = [0u32; 7];
        let mut out = Vec::new();
        for _ in 0..20_000 {
            out.clear();
            w.pick(1, &mut rng, &mut out);
            count[out[0]] += 1;
        }
        for (i, &c) in count.iter().enumerate() {
            let want = f64::from(weights[i]) / f64::from(total);
            let got = f64::from(c) / 20_000.0;
            assert!(
                (got - want).abs() <= 0.1 * want,
                "server {i}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn skewed_weights_zero_weights_and_small_sets() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut out = Vec::new();
        // One item holds almost all weight: the others still come out.
        let w = Weighted::new([(0, 1_000_000_000u32), (1, 1), (2, 1), (3, 1), (4, 1)]);
        w.pick(4, &mut rng, &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0], 0);
        // Zero weights are never picked while others have weight.
        out.clear();
        let w = Weighted::new([(0, 0u32), (1, 5), (2, 0)]);
        w.pick(4, &mut rng, &mut out);
        assert_eq!(out, vec![1]);
        // All zero: all count as 1.
        out.clear();
        let w = Weighted::new([(0, 0u32), (1, 0)]);
        w.pick(4, &mut rng, &mut out);
        out.sort_unstable();
        assert_eq!(out, vec![0, 1]);
        // Empty and n = 0.
        out.clear();
        Weighted::<u8>::new([]).pick(4, &mut rng, &mut out);
        w.pick(0, &mut rng, &mut out);
        assert!(out.is_empty());
        // Huge weights do not overflow.
        let w = Weighted::new((0..1000).map(|i| (i, u32::MAX)));
        w.pick(4, &mut rng, &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(*w.get(out[0]), out[0]);
    }
}
