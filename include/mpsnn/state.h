// mpsnn — State (MPSState), the container kernels pass to one another (spec 10 §10.1).
// The foundation defines the base class; training kernels add resources and read counts.
#pragma once
#include <string>

#include "mpsnn/types.h"

namespace mpsnn {

/// Base of every state object: data one kernel produces and another consumes (pooling indices,
/// weights, statistics, masks). Held by StatePtr.
class State : public std::enable_shared_from_this<State> {
 public:
  virtual ~State() = default;
  std::string label() const { return label_; }
  void setLabel(std::string label) { label_ = std::move(label); }
  /// Bytes of backing store (0 if unknown).
  virtual uint64_t resourceSize() const { return 0; }
  virtual bool isTemporary() const { return false; }

 protected:
  State() = default;

 private:
  std::string label_;
};

}  // namespace mpsnn
