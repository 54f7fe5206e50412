"""Baseline drinking severity: grams of ethanol per day, and the heavy / moderate class of a trial.

The default threshold is the WHO's high-risk drinking level (WHO 2000, *International guide for monitoring alcohol
consumption and related harm*, Table 1): more than 60 g of ethanol a day for men, more than 40 g for women. Where a
trial reports its sex mix the threshold is the sample's mix of the two, 60·m + 40·(1 − m) for a male fraction m;
where it does not, the men's level (60 g) is used. A trial is ``heavy`` when its baseline mean is at or above the
threshold and ``moderate`` below it.

When the baseline mean was not published, the entry criterion can still classify a trial: if a man needed at least
the threshold to enter (and a woman at least the women's level), every participant was a heavy drinker. An entry
minimum below the threshold says nothing about the mean, so the trial is not classified.

A trial without a class has severity ``None``: missing stays missing, so that no statistical comparison ever treats
"unknown" as a level of its own (:data:`NOT_CLASSIFIED` is the label for display only). The basis of each class is
recorded (``baseline mean``, qualified by ``<arm> arm only``, ``assumed drink size`` or ``stated drink size``, or
``inclusion criterion``).

A baseline in drinks depends on the size of a drink. When that size is assumed, :func:`flip_drink_size` gives the
size at which the class would change: g/day is drinks x size, so the class flips at size* = threshold x size / g.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from metabac._checks import InputError, require_positive_number

WHO_HIGH_RISK_MEN = 60.0
WHO_HIGH_RISK_WOMEN = 40.0
SEVERITY_CLASSES = ("heavy", "moderate")
NOT_CLASSIFIED = "not classified"  # display label of a missing class; never a level in an analysis


@dataclass(frozen=True)
class Severity:
    """A trial's baseline drinking and its class, with what the class rests on.

    ``g_per_day`` is None without a daily baseline; ``severity`` is ``heavy``, ``moderate`` or None (not
    classified, and then ``basis`` is None too). ``drink_size_g`` is the drink size the baseline was converted with
    (None when it was published in grams or not used), ``drink_size_assumed`` says whether that size is an
    assumption, and ``flip_drink_size_g`` is the size at which the class would change (only when the class rests on
    an assumed size). ``second_hand`` is true when a number the class rests on comes from a secondary source.
    """

    g_per_day: float | None
    severity: str | None
    basis: str | None
    threshold: float
    drink_size_g: float | None = None
    drink_size_assumed: bool = False
    flip_drink_size_g: float | None = None
    second_hand: bool = False


def grams_per_day(measure: str, mean: float, drink_size_g: float | None) -> float | None:
    """Convert a baseline mean to grams of ethanol per day.

    ``g_per_day`` is kept; ``drinks_per_day`` is multiplied by the drink size; ``drinks_per_week`` by the drink
    size / 7. Drinks per *drinking* day and heavy-drinking-day percentages are not daily intakes and give None, as
    does any drink count without a drink size.
    """
    if measure == "g_per_day":
        return float(mean)
    if drink_size_g is None:
        return None
    if measure == "drinks_per_day":
        return float(mean) * drink_size_g
    if measure == "drinks_per_week":
        return float(mean) * drink_size_g / 7
    return None


def threshold_for(male_fraction: float | None, men: float = WHO_HIGH_RISK_MEN,
                  women: float = WHO_HIGH_RISK_WOMEN) -> float:
    """The high-risk level for a sample: ``men`` when the sex mix is unknown, else men·m + women·(1 − m).

    Both levels must be finite and positive (a NaN threshold would class every trial as moderate)."""
    men = require_positive_number(men, "threshold")
    women = require_positive_number(women, "threshold_women")
    if male_fraction is None:
        return men
    if not 0 <= male_fraction <= 1:
        raise InputError(f"male_fraction: must lie in [0, 1], got {male_fraction}")
    return men * male_fraction + women * (1 - male_fraction)


def classify(g_per_day: float | None, male_fraction: float | None = None, threshold: float = WHO_HIGH_RISK_MEN,
             threshold_women: float = WHO_HIGH_RISK_WOMEN) -> str | None:
    """``heavy`` if g_per_day >= the sample's threshold, ``moderate`` below it, None (not classified) without a value.

    >>> classify(129.0), classify(45.0), classify(55.0, male_fraction=0.5), classify(None)
    ('heavy', 'moderate', 'heavy', None)
    """
    limit = threshold_for(male_fraction, threshold, threshold_women)
    if g_per_day is not None and not isinstance(g_per_day, (int, float)):
        raise InputError(f"g_per_day: must be a number or None, got {g_per_day!r}")
    if g_per_day is None or math.isnan(g_per_day):
        return None
    return "heavy" if g_per_day >= limit else "moderate"


def classify_by_inclusion(min_men: float | None, min_women: float | None, any_women: bool,
                          threshold: float = WHO_HIGH_RISK_MEN,
                          threshold_women: float = WHO_HIGH_RISK_WOMEN) -> str | None:
    """``heavy`` when the entry minimum is at or above the high-risk level for every sex admitted, else None."""
    threshold_for(None, threshold, threshold_women)  # checks both levels
    if min_men is None or min_men < threshold:
        return None
    if any_women and (min_women is None or min_women < threshold_women):
        return None
    return "heavy"


def flip_drink_size(g_per_day: float, drink_size_g: float, threshold: float) -> float:
    """The drink size at which a baseline converted from drinks would cross the threshold.

    The baseline is ``drinks x drink_size_g`` grams a day, so it equals the threshold at
    ``size* = threshold x drink_size_g / g_per_day``: a heavy trial becomes moderate with any smaller drink, a
    moderate one heavy with a drink at least this size.

    >>> round(flip_drink_size(64.0, 14.0, 59.6), 2)   # 32 drinks/week at 14 g, 98% men
    13.04
    """
    if g_per_day <= 0 or drink_size_g <= 0:
        raise ValueError("g_per_day and drink_size_g must be positive")
    return threshold * drink_size_g / g_per_day
