"""Calibration of the S-parameter against Li stoichiometry (1 - x) in Li(1-x)Ni0.8Mn0.1Co0.1O2.

The paper finds S linear in (1 - x) (Fig. S17) and calibrates it with ICP on the post-mortem
cathode. Here a calibration is ``S = intercept + slope (1 - x)``; the default coefficients are
the least-squares line through the paper's Table 2, ``S = 0.650 + 2.309 (1 - x)``, which
reproduces every row of the table within 0.01 in (1 - x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from analysis_engine.errors import EngineInputError

__all__ = [
    "LinearCalibration",
    "PAPER_TABLE2",
    "DEFAULT_CALIBRATION",
    "fit_calibration",
    "parse_calibration",
    "calibration_from_mapping",
]

#: Paper Table 2: (state, depth region, S-parameter as measured, 1 - x).
PAPER_TABLE2: tuple[tuple[str, int, float, float], ...] = (
    ("charged", 1, 0.88, 0.10),
    ("charged", 2, 0.72, 0.03),
    ("charged", 3, 0.65, 0.00),
    ("discharged", 1, 2.40, 0.76),
    ("discharged", 2, 2.34, 0.73),
    ("discharged", 3, 2.06, 0.61),
)


@dataclass(frozen=True)
class LinearCalibration:
    """``S = intercept + slope * (1 - x)``, inverted to give the Li stoichiometry (1 - x).

    Attributes
    ----------
    intercept, slope : float
        Coefficients (S at 1 - x = 0, and dS / d(1 - x)).
    intercept_sigma, slope_sigma : float
        Standard errors when fitted from three or more points, else 0.
    source : str
        Where the coefficients come from (shown in result provenance).
    covariance_ab : float
        Covariance of intercept and slope (0 when not fitted).
    """

    intercept: float
    slope: float
    intercept_sigma: float = 0.0
    slope_sigma: float = 0.0
    source: str = "user"
    covariance_ab: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.intercept) and np.isfinite(self.slope)):
            raise EngineInputError("calibration coefficients must be finite numbers")
        if abs(self.slope) < 1e-9:
            raise EngineInputError(
                "calibration slope is zero: S would not depend on the Li stoichiometry, so "
                "(1 - x) cannot be recovered from S; expected S = A + B (1 - x) with B != 0"
            )

    def stoichiometry(self, s: ArrayLike) -> np.ndarray:
        """Li stoichiometry (1 - x) for S-parameter value(s) ``s`` (NaN stays NaN)."""
        return (np.asarray(s, dtype=np.float64) - self.intercept) / self.slope

    def stoichiometry_sigma(self, s_sigma: ArrayLike) -> np.ndarray:
        """Statistical error of (1 - x) propagated from the error of S (coefficients exact)."""
        return np.asarray(s_sigma, dtype=np.float64) / abs(self.slope)

    def covariance(self) -> np.ndarray:
        """2 x 2 covariance of (intercept, slope)."""
        return np.array(
            [
                [self.intercept_sigma**2, self.covariance_ab],
                [self.covariance_ab, self.slope_sigma**2],
            ]
        )

    def stoichiometry_calibration_sigma(self, s: ArrayLike) -> np.ndarray:
        """Error of (1 - x) at S = ``s`` from the coefficients' covariance alone.

        ``li = (S - A) / B``: ``var = (var_A + li^2 var_B + 2 li cov_AB) / B^2``.
        """
        li = self.stoichiometry(s)
        var = (
            self.intercept_sigma**2 + li**2 * self.slope_sigma**2 + 2 * li * self.covariance_ab
        ) / self.slope**2
        return np.sqrt(np.maximum(var, 0.0))

    def s_parameter(self, one_minus_x: ArrayLike) -> np.ndarray:
        """S-parameter expected at Li stoichiometry ``one_minus_x``."""
        return self.intercept + self.slope * np.asarray(one_minus_x, dtype=np.float64)

    def as_dict(self) -> dict[str, float | str]:
        """Plain dict for summaries and HDF5 attributes."""
        return {
            "intercept": self.intercept,
            "slope": self.slope,
            "intercept_sigma": self.intercept_sigma,
            "slope_sigma": self.slope_sigma,
            "covariance_ab": self.covariance_ab,
            "source": self.source,
        }


def fit_calibration(
    s_values: ArrayLike,
    one_minus_x: ArrayLike,
    *,
    s_sigma: ArrayLike | None = None,
    source: str = "fitted",
) -> LinearCalibration:
    """Least-squares line ``S = intercept + slope (1 - x)`` through calibration points.

    Parameters
    ----------
    s_values : array_like, shape (n,)
        Measured S-parameters (same windows and resolution as the data to be calibrated).
    one_minus_x : array_like, shape (n,)
        Known Li stoichiometries (e.g. from ICP) of the same samples.
    s_sigma : array_like, shape (n,), optional
        Standard errors of the S values: weighted fit, covariance ``(X^T W X)^-1`` (scaled by
        the reduced chi-square when it exceeds 1 and n >= 3). Without them: ordinary least
        squares, covariance from the residual scatter when n >= 3, else zero.

    Returns
    -------
    LinearCalibration
        With the standard errors and covariance of the coefficients.

    Raises
    ------
    EngineInputError
        Fewer than 2 points, mismatched lengths, non-finite values, all points at one
        stoichiometry (collinear in S only), non-positive sigmas, or a fitted slope of zero.
    """
    s = np.asarray(s_values, dtype=np.float64).ravel()
    li = np.asarray(one_minus_x, dtype=np.float64).ravel()
    if s.size != li.size:
        raise EngineInputError(f"{s.size} S values but {li.size} stoichiometries")
    if s.size < 2 or not (np.all(np.isfinite(s)) and np.all(np.isfinite(li))):
        raise EngineInputError("a calibration needs at least 2 finite (S, 1 - x) points")
    if np.ptp(li) == 0:
        raise EngineInputError(
            "all calibration points have the same stoichiometry: the slope is undetermined"
        )
    if s_sigma is None:
        weights = np.ones_like(s)
    else:
        sig = np.asarray(s_sigma, dtype=np.float64).ravel()
        if sig.shape != s.shape or not np.all(np.isfinite(sig)) or np.any(sig <= 0):
            raise EngineInputError("calibration S errors must be finite and > 0, one per point")
        weights = 1.0 / sig**2
    design = np.stack([np.ones_like(li), li], axis=1)
    normal = design.T @ (weights[:, None] * design)
    inverse = np.linalg.inv(normal)
    coef = inverse @ (design.T @ (weights * s))
    cov = np.zeros((2, 2))
    if s_sigma is not None:
        cov = inverse
        if s.size >= 3:
            residual = s - design @ coef
            chi2 = float(residual @ (weights * residual)) / (s.size - 2)
            cov = inverse * max(chi2, 1.0)
    elif s.size >= 3:
        residual = s - design @ coef
        cov = (residual @ residual / (s.size - 2)) * inverse
    return LinearCalibration(
        float(coef[0]),
        float(coef[1]),
        intercept_sigma=float(np.sqrt(cov[0, 0])),
        slope_sigma=float(np.sqrt(cov[1, 1])),
        covariance_ab=float(cov[0, 1]),
        source=source,
    )


#: The paper's Table 2 least-squares line, rounded as published: S = 0.650 + 2.309 (1 - x).
DEFAULT_CALIBRATION = LinearCalibration(
    0.650, 2.309, source="least-squares fit of Huang et al. 2022 Table 2"
)


def parse_calibration(text: str) -> LinearCalibration:
    """Parse ``"A,B"`` (S = A + B (1 - x)) from the command line."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        if len(parts) != 2:
            raise ValueError
        a, b = float(parts[0]), float(parts[1])
    except ValueError:
        raise EngineInputError(
            f"--calibration expects two numbers A,B meaning S = A + B (1 - x), got {text!r}"
        ) from None
    return LinearCalibration(a, b, source="user")


def calibration_from_mapping(values: dict) -> LinearCalibration:
    """A calibration as written by ``compton-calibrate`` (its ``calibration`` object)."""
    try:
        return LinearCalibration(
            float(values["intercept"]),
            float(values["slope"]),
            intercept_sigma=float(values.get("intercept_sigma", 0.0)),
            slope_sigma=float(values.get("slope_sigma", 0.0)),
            covariance_ab=float(values.get("covariance_ab", 0.0)),
            source=str(values.get("source", "calibration file")),
        )
    except (KeyError, TypeError, ValueError):
        raise EngineInputError(
            "calibration file must hold intercept and slope (and optionally intercept_sigma, "
            "slope_sigma, covariance_ab)"
        ) from None
