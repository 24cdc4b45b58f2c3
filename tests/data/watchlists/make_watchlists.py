"""Write watchlist.vot and watchlist.fits from watchlist.csv (run from any directory).

VOTable: ra/dec in deg, radius in arcmin (so loading converts it), plus the comment column.
FITS: ra/dec in deg, radius in arcsec (TUNIT set), plus an integer column that loaders ignore.
"""

from pathlib import Path

import astropy.units as u
from astropy.io import ascii as astropy_ascii
from astropy.table import Table

HERE = Path(__file__).parent

source = astropy_ascii.read(HERE / "watchlist.csv", format="csv")

vot = Table()
vot["name"] = source["name"].astype(str)
vot["ra"] = source["ra"].astype(float) * u.deg
vot["dec"] = source["dec"].astype(float) * u.deg
vot["radius"] = (source["radius"].astype(float) * u.arcsec).to(u.arcmin)
vot["comment"] = source["comment"].astype(str)
vot.write(HERE / "watchlist.vot", format="votable", overwrite=True)

fits = Table()
fits["NAME"] = source["name"].astype(str)
fits["RA"] = source["ra"].astype(float) * u.deg
fits["DEC"] = source["dec"].astype(float) * u.deg
fits["RADIUS"] = source["radius"].astype(float) * u.arcsec
fits["PRIORITY"] = list(range(1, len(source) + 1))
fits.write(HERE / "watchlist.fits", format="fits", overwrite=True)
