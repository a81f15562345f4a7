// The round-robin partner of index i in round r of m indices (m even): m − 1 goes with r,
// any other i with (2r − i) mod (m − 1). A partner ≥ n is the dummy of an odd n: no pair.
fn partner(i: u32, r: u32, m: u32) -> u32 {
  if (i == m - 1u) { return r; }
  if (i == r) { return m - 1u; }
  return (2u * r + (m - 1u) - i) % (m - 1u);
}
