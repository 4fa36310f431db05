// random: a portable, seedable generator (xoshiro256**) whose streams are identical on every
// platform and standard library, unlike std::uniform_int_distribution
#pragma once
#include <cstdint>
#include <vector>

namespace nas {

// splitmix64's output function: a bijection of 64-bit values that scatters every input bit.
inline uint64_t splitmix64_scramble(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A 63-bit seed derived from two values (a trial seed and an epoch or a step): the splitmix64
// scramble of a hash-combine, masked to 63 bits because generators take the seed as int64 in
// places. Different (a, b) give unrelated seeds; the same (a, b) always the same one. The
// training loop's data order and augmentation draw from it (their checkpoints depend on it).
inline uint64_t mix_seed(uint64_t a, uint64_t b) {
  return splitmix64_scramble(a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2))) & 0x7fffffffffffffffULL;
}

// Output `index` + 1 of a splitmix64 generator started at `seed`: one seed per index of a
// stream (a candidate's id), all 64 bits. The proxies' networks and zen's inputs are seeded with
// it (changing it would change every recorded proxy score).
inline uint64_t splitmix64_at(uint64_t seed, uint64_t index) {
  return splitmix64_scramble(seed + 0x9e3779b97f4a7c15ULL * (index + 1));
}

class Rng {
public:
  // Seeds the state from (seed, stream) with splitmix64; distinct streams never share state.
  explicit Rng(uint64_t seed, uint64_t stream = 0) {
    uint64_t x = seed ^ (0x9e3779b97f4a7c15ULL * (stream + 1));
    for (auto& s : s_) s = splitmix(x);
  }
  uint64_t next() {
    uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0]; s_[3] ^= s_[1]; s_[1] ^= s_[2]; s_[0] ^= s_[3];
    s_[2] ^= t; s_[3] = rotl(s_[3], 45);
    return r;
  }
  // Uniform integer in [0, n) without modulo bias; n must be > 0.
  uint64_t below(uint64_t n) {
    uint64_t limit = (~uint64_t(0)) - (~uint64_t(0)) % n;
    uint64_t v;
    do { v = next(); } while (v >= limit);
    return v % n;
  }
  // Uniform double in [0, 1).
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
  // Bernoulli(p).
  bool chance(double p) { return uniform() < p; }
  template <class T> const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }

private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix(uint64_t& x) { return splitmix64_scramble(x += 0x9e3779b97f4a7c15ULL); }
  uint64_t s_[4];
};

} // namespace nas
