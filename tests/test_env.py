"""env.json's CPU card: two CPUs sold under one name must not read alike (issue 21: "AMD EPYC" in a VM)."""
import shutil

from testbed.compare import MACHINE, env_differences, env_notes
from testbed.env import cpu_info
from testbed.report.reference_index import machine_card

from tests.test_compare import RERUNS, _edit

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 hypervisor

processor\t: 1
vendor_id\t: AuthenticAMD
"""
ZEN5 = ZEN4.replace("cpu family\t: 25", "cpu family\t: 26").replace("model\t\t: 17", "model\t\t: 2").replace(
    "avx512f", "avx_vnni avx512f")
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes sve sve2\nCPU implementer\t: 0x41\n"


def test_cpu_info_tells_two_generations_under_one_name_apart():
    a, b = cpu_info(ZEN4), cpu_info(ZEN5)
    assert a["cpu_model"] == b["cpu_model"] == "AMD EPYC"
    assert a["cpu_id"] == "AuthenticAMD family 25 model 17 stepping 1"
    assert b["cpu_id"] == "AuthenticAMD family 26 model 2 stepping 1"
    assert a["cpu_simd"] == "avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16"
    assert "avx_vnni" in b["cpu_simd"].split() and "hypervisor" not in b["cpu_simd"]


def test_cpu_info_reads_arm_features_and_leaves_unknowns_out():
    arm = cpu_info(ARM)
    assert arm["cpu_id"] is None and arm["cpu_simd"] == "asimd sve sve2"
    assert cpu_info("")["cpu_simd"] is None and cpu_info("")["cpu_id"] is None


def test_another_cpu_generation_is_another_machine_for_the_gate(tmp_path):
    ref, new = RERUNS[0].parent / "20261202T041049Z-1f898f3", tmp_path / "new"
    shutil.copytree(ref, new)
    assert env_differences(new, ref, MACHINE) == []      # the reference predates cpu_id: unrecorded is no difference
    other = tmp_path / "ref"
    shutil.copytree(ref, other)
    _edit(other, "env.json", lambda e: e.update(cpu_info(ZEN4)))
    _edit(new, "env.json", lambda e: e.update(cpu_info(ZEN5)))
    diffs = env_differences(new, other, MACHINE)
    assert [d.split(" ")[0] for d in diffs] == ["cpu_id", "cpu_simd"]


def test_the_machine_card_names_the_generation_where_recorded():
    env = {"device": "cpu", "cpu_model": "AMD EPYC", "cpu_count": 2, "threads": 1}
    assert "cpu: AMD EPYC, 2 cores" in machine_card(env)                     # an older env.json
    assert "cpu: AMD EPYC (AuthenticAMD family 26 model 2 stepping 1), 2 cores" in machine_card(
        env | cpu_info(ZEN5))


def test_a_reference_without_cpu_id_is_named_in_a_note(tmp_path):
    ref, new = RERUNS[0].parent / "20261202T041049Z-1f898f3", tmp_path / "new"
    shutil.copytree(ref, new)
    assert not any("recorded by one run only" in n for n in env_notes(new, ref))
    _edit(new, "env.json", lambda e: e.update(cpu_info(ZEN4)))
    notes = [n for n in env_notes(new, ref) if "recorded by one run only" in n]
    assert len(notes) == 1 and "cpu_id (missing in reference), cpu_simd (missing in reference)" in notes[0]
    assert not any("recorded by one run only" in n for n in env_notes(ref, ref))
