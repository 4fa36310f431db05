// augment: the names of the random augmentations, as [data] augment, nas-distill teacher
// --augment and nas-slurm --teacher-augment take them
#pragma once
#include <string>
#include <vector>

namespace nas::config {

struct Augmentations {
  bool crop = false;   // random crop after zero padding
  bool flip = false;   // random horizontal flip
  // "crop,flip", "crop", "flip" or "": the canonical list, whatever the order given
  std::string names() const;
};

// The augmentations of a list of names; throws std::invalid_argument naming an unknown one
// (with the closest known name when there is one).
Augmentations parse_augmentations(const std::vector<std::string>& names);

} // namespace nas::config
