// table: a tabular benchmark -- the accuracy of every architecture of a space, looked up instead
// of trained (NAS-Bench-201 / NATS-Bench: 15,625 cells, CIFAR-10 accuracy after 200 epochs)
#pragma once
#include <optional>
#include <string>
#include <unordered_map>

namespace nas::tabular {

class Nb201Table {
public:
  // Reads a CSV with a header naming the columns ArchitectureString and `column` (by default
  // the CIFAR-10 test accuracy after 200 epochs, in percent). Throws UsageError naming the file
  // when it cannot be read, lacks a column, or holds a row that does not parse.
  static Nb201Table load(const std::string& path, const std::string& column = "CIFAR10TestAccuracy200Epochs");
  // The accuracy (percent) of an NB201 architecture string, or nullopt when the table lacks it.
  std::optional<double> accuracy(const std::string& arch) const;
  size_t size() const { return acc_.size(); }
  const std::string& column() const { return column_; }
  // The best accuracy of the table (its optimum, for regret).
  double best() const { return best_; }
private:
  std::unordered_map<std::string, double> acc_;
  std::string column_;
  double best_ = 0;
};

} // namespace nas::tabular
