"""Every interval, test and verdict: raw samples in, numbers with their uncertainty out.

``bench run``, ``bench compare``, the terminal and the report all call this
package, so a row shows the same interval wherever it is read.
"""
