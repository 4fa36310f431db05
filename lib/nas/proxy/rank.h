// rank: rank statistics for proxies -- ranks with ties, Spearman and Kendall correlation, top-k
// overlap, and the rank ensembles that combine several proxies
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace nas::proxy {

// Ranks 1..n in ascending order of value, ties sharing their mean rank. Values that are not
// finite (a degenerate score) rank below every finite one, all sharing the lowest ranks.
std::vector<double> ranks(const std::vector<double>& values);

// Spearman's rho (Pearson correlation of the tie-averaged ranks) and Kendall's tau-b. Pairs where
// either value is not finite are dropped first. NaN when fewer than 3 pairs are left or a
// side is constant.
double spearman(const std::vector<double>& a, const std::vector<double>& b);
double kendall(const std::vector<double>& a, const std::vector<double>& b);

// The share of the k best by `truth` (higher is better) that are also among the k best by
// `score`; NaN for k < 1 or fewer than k finite pairs.
double top_k_overlap(const std::vector<double>& score, const std::vector<double>& truth, size_t k);

// Ensembles over candidates: `scores` maps a proxy to one value per candidate (non-finite:
// degenerate, the worst). sum: the weighted sum of log(rank / n) (AZ-NAS's normalised
// log-ranks; 0 is best). vote: for each candidate, the number of others it beats by the weighted
// majority of the proxies (Copeland), over n - 1 so that 1 is best.
std::vector<double> ensemble_sum(const std::map<std::string, std::vector<double>>& scores,
                                 const std::map<std::string, double>& weights);
std::vector<double> ensemble_vote(const std::map<std::string, std::vector<double>>& scores,
                                  const std::map<std::string, double>& weights);

} // namespace nas::proxy
