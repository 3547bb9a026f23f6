// The gdlab error hierarchy. Every failure is an exception of one of these types; the boundary
// (gdlab's main, a worker's task loop) turns it into one clear line and an exit code.
//
//   Error                 base; what() is the full message
//   ├── InputError        bad user input: a spec, a data file, a CLI argument (exit code 2)
//   │   └── SpecError     names the file, line and field of the spec
//   ├── StoreError        HDF5 / filesystem failures, with the HDF5 error stack
//   ├── TransportError    message passing failures (MPI or in-process)
//   └── NumericError      a computation that cannot go on (NaN, no convergence)
#pragma once

#include <stdexcept>
#include <string>

namespace gdlab {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class InputError : public Error {
 public:
  using Error::Error;
};

// A spec problem. `field` is a dotted path relative to the message being validated (for example
// "lr" or "dataset.planted.n"); the spec loader prefixes it with the experiment's path and
// resolves it to a file line, so the final message reads
//   campaign.textproto:12:5: experiments[0].separable_gd.lr: must be > 0 (got -0.1)
class SpecError : public InputError {
 public:
  SpecError(std::string field, std::string problem)
      : InputError(field.empty() ? problem : field + ": " + problem),
        field_(std::move(field)),
        problem_(std::move(problem)) {}
  const std::string& field() const { return field_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string field_;
  std::string problem_;
};

class StoreError : public Error {
 public:
  using Error::Error;
};

class TransportError : public Error {
 public:
  using Error::Error;
};

class NumericError : public Error {
 public:
  using Error::Error;
};

}  // namespace gdlab
