// Shared Hessian tools (stability.md §0.3): the top eigenvalue of a symmetric operator known only
// through matrix-vector products (Hessian-vector products, HVPs), by power iteration or by Lanczos,
// plus a finite-difference HVP built from a gradient callback (for checking exact HVPs).
//
// Plain C++/Eigen, no protobuf. Used by the kinds relu_minima_stability (§2), gfs_sharpness (§3) and
// async_sgd (§1). Every routine is deterministic given its start vector; the start vector is an
// argument (draw it with gdlab::Rng in the caller), never drawn here.
//
// Conventions
//  - "lambda_max" is the LARGEST ALGEBRAIC eigenvalue (for an indefinite H it can be smaller in
//    magnitude than the most negative one). This is the sharpness of §0.3.
//  - lanczos_extreme() also returns the smallest algebraic eigenvalue, so the largest-magnitude one is
//    max(|lambda_max|, |lambda_min|) (helper largest_magnitude_eigenvalue()).
//  - power_iteration_largest_magnitude() converges to the eigenvalue of largest MAGNITUDE (signed),
//    which is what plain power iteration does. power_iteration_max() returns the largest ALGEBRAIC
//    eigenvalue: it runs power iteration on H, and if the dominant eigenvalue is negative, a second
//    run on the shifted operator H − μI (μ = that dominant eigenvalue) recovers λ_max = λ' + μ.
//    Prefer Lanczos: it converges far faster when the top eigenvalues are close.
//  - Bad arguments (empty, zero or non-finite start vector; non-positive tolerances or cap; an HVP
//    returning a vector of the wrong size) throw std::invalid_argument. Non-convergence is not an
//    error: check `converged`.
#pragma once

#include <Eigen/Dense>
#include <functional>

namespace gdlab::hessian {

// out = H v. `out` is resized by the callback if needed (callers pass an empty or sized vector).
// The callback must be linear in v and symmetric (⟨a, H b⟩ = ⟨H a, b⟩) for the results to mean anything.
using HessianVectorProduct = std::function<void(const Eigen::VectorXd& v, Eigen::VectorXd& out)>;

// Gradient callback for the finite-difference HVP: out = ∇L(theta).
using GradientFunction = std::function<void(const Eigen::VectorXd& theta, Eigen::VectorXd& out)>;

struct EigenOptions {
  // Stop when |λ_k − λ_{k−1}| ≤ rel_tol·scale and ‖Hx − λ_k x‖ ≤ √rel_tol·scale (power iteration;
  // the residual test rejects a Rayleigh quotient that has settled while x still wanders), or when the
  // Ritz residual bound |β_k·s_k| ≤ rel_tol·scale (Lanczos, Golub & Van Loan §10.1);
  // scale = max(|λ|, abs_floor).
  double rel_tol = 1e-10;
  double abs_floor = 1e-12;
  // Iteration cap: power-iteration steps, or Lanczos steps (Krylov dimension; capped at the operator
  // dimension, where Lanczos is exact up to rounding).
  int max_iterations = 1000;
  // Lanczos only: full reorthogonalisation against all previous Lanczos vectors (O(m²·dim) work,
  // robust). Off = plain three-term recurrence (ghost eigenvalues possible; λ_max still correct).
  bool reorthogonalize = true;
};

struct EigenResult {
  double value = 0.0;         // the eigenvalue estimate (λ_max, or the largest-magnitude one)
  Eigen::VectorXd vector;     // unit-norm Ritz/eigenvector estimate for `value`
  int iterations = 0;         // HVP calls used (power: iterations; Lanczos: Krylov dimension)
  bool converged = false;     // tolerance met before the cap (Lanczos: also true on invariant subspace)
  double residual = 0.0;      // ‖H x − value·x‖ at the end (Lanczos spends one extra HVP per returned
                              // Ritz pair on it; power iteration gets it from its last step)
};

struct LanczosResult {
  EigenResult max;            // largest algebraic eigenvalue λ_max
  EigenResult min;            // smallest algebraic eigenvalue λ_min (converged flag is for λ_min)
};

// Power iteration x ← Hx/‖Hx‖ from `start` (nonzero; it need not be normalised). Returns the
// eigenvalue of largest magnitude, with its sign (Rayleigh quotient). Converges when the Rayleigh
// quotient changes by ≤ rel_tol relatively. If ±λ both dominate (H indefinite with |λ_max| = |λ_min|)
// it may not converge; `converged` says so.
EigenResult power_iteration_largest_magnitude(const HessianVectorProduct& hvp,
                                              const Eigen::VectorXd& start,
                                              const EigenOptions& options = {});

// Largest ALGEBRAIC eigenvalue by power iteration (with one spectral shift if the dominant eigenvalue
// is negative; see the header comment). `iterations` counts both runs.
EigenResult power_iteration_max(const HessianVectorProduct& hvp, const Eigen::VectorXd& start,
                                const EigenOptions& options = {});

// Lanczos with (optional) full reorthogonalisation from `start` (nonzero). Returns both extreme
// algebraic eigenvalues of the Krylov tridiagonal matrix (Ritz values), with Ritz vectors.
// `converged` is per end of the spectrum.
LanczosResult lanczos_extreme(const HessianVectorProduct& hvp, const Eigen::VectorXd& start,
                              const EigenOptions& options = {});

// λ_max by Lanczos; stops as soon as the largest Ritz value has converged (cheaper than
// lanczos_extreme, which also waits for λ_min).
EigenResult lanczos_max(const HessianVectorProduct& hvp, const Eigen::VectorXd& start,
                        const EigenOptions& options = {});

// max(|λ_max|, |λ_min|) from a Lanczos result.
double largest_magnitude_eigenvalue(const LanczosResult& result);

// Central-difference HVP: H v ≈ (∇L(θ + εv̂) − ∇L(θ − εv̂))/(2ε)·‖v‖ with v̂ = v/‖v‖ and
// ε = step·max(1, ‖θ‖). Error O(ε²)·‖∇³L‖; meant for checking exact HVPs, not for production.
// Returns a callback bound to a copy of θ and the gradient function.
HessianVectorProduct finite_difference_hvp(GradientFunction gradient, Eigen::VectorXd theta,
                                           double step = 1e-5);

// HVP of an explicit dense symmetric matrix (tests, small problems). Holds a copy of H.
HessianVectorProduct dense_hvp(Eigen::MatrixXd hessian);

}  // namespace gdlab::hessian
