"""Physical units: astropy parsing plus the radiation-field units astropy lacks.

The interstellar radiation field is quoted in Habing units: G0 = 1 is
1.6e-3 erg s^-1 cm^-2 of 6-13.6 eV FUV flux (Habing 1968). The Draine (1978) field is
1.71 Habing. Both are registered as astropy units so that a FITS ``BUNIT = 'Habing'``
parses, converts to erg s^-1 cm^-2, and round-trips into headers.
"""

from __future__ import annotations

import astropy.units as u

from .errors import InputError

HABING = u.def_unit(["Habing", "habing"], 1.6e-3 * u.erg / u.s / u.cm**2,
                    doc="Habing (1968) FUV interstellar radiation field, G0 = 1")
DRAINE = u.def_unit(["Draine", "draine"], 1.71 * HABING,
                    doc="Draine (1978) FUV interstellar radiation field")

u.add_enabled_units([HABING, DRAINE])


def parse_unit(text: str | None, source: str = "config") -> u.UnitBase:
    """Parse a unit string (FITS BUNIT, HDF5 attribute, config) with astropy.

    Parameters
    ----------
    text : str or None
        The unit, e.g. ``"Habing"``, ``"erg s-1 cm-2"``, ``"nanomaggy"``, ``"cm-2"``.
        None or an empty string means dimensionless.
    source : str
        Where the string came from (a file path or config key), named in the error.

    Returns
    -------
    astropy.units.UnitBase
    """
    if text is None or str(text).strip() == "":
        return u.dimensionless_unscaled
    try:
        return u.Unit(str(text).strip(), parse_strict="raise")
    except ValueError as exc:
        raise InputError(source, f"unit {text!r} is not a unit astropy understands ({exc})") from None


def unit_string(unit: u.UnitBase) -> str:
    """The string stored in records and headers; parses back with :func:`parse_unit`."""
    return "" if unit == u.dimensionless_unscaled else unit.to_string()
