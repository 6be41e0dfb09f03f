"""The growth design names its test as a code beside the English label (issue 11), so that a
Dutch report renders it from the catalogue."""

from __future__ import annotations

import pytest

from effectstudy.power.growth import GrowthDesign
from effectstudy.report.i18n import t, use_language


@pytest.mark.parametrize(("ddf", "english", "dutch"), [
    ("satterthwaite", "t-test of time = 0 (Satterthwaite df), REML",
     "t-toets van time = 0 (Satterthwaite-vrijheidsgraden), REML"),
    ("kenward-roger", "t-test of time = 0 (Kenward-Roger df), REML",
     "t-toets van time = 0 (Kenward-Roger-vrijheidsgraden), REML"),
])
def test_the_test_code_renders_like_the_label(ddf, english, dutch):
    d = GrowthDesign.planned(programmes=2, clients_per_programme=3, weeks=[0, 8], rng=1,
                             fixed={"Intercept": 50, "time": -0.1}, sd_residual=5.0, ddf=ddf)
    code = d.test_code()
    assert code == {"code": "growth_t", "term": "time", "ddf": ddf}
    assert d.test_description() == english
    names = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger"}
    for lang, want in (("en", english), ("nl", dutch)):
        with use_language(lang):
            assert t(f"power.test.{code['code']}", term=code["term"], ddf=names[ddf]) == want
