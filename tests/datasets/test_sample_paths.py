"""The README's sample commands name the data root the sample maker really writes."""
import os.path as osp
import re

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_readme_ade_sample_path_is_what_the_maker_writes(ade_sample):
    text = open(osp.join(ROOT, "README.md")).read()
    m = re.search(r"python tools/make_sample_data\.py ade (\S+) +# -> (\S+)", text)
    assert m, "README shows the ADE sample command and its data root"
    out, root = m.groups()
    # the session fixture ran the same maker into OUT = its temporary folder
    assert osp.relpath(root, out) == osp.basename(ade_sample) == "ADEChallengeData2016"
    assert f"data root\n`{root}`" in text or f"`{root}`" in text  # the demo's sentence names the same root
