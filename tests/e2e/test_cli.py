"""The command line: clear one-message errors with exit status 2, never a traceback."""

import json
import subprocess
import sys

import pytest

from genweave.cli import main

PROGRAM = '''\
model lm = "smollm2-135m"

program echo(word: str) -> str:
  target:
    "Say {word}:"
    x = gen max 2 tokens
    return x
  infer:
    greedy
'''


@pytest.fixture
def program_file(tmp_path):
    path = tmp_path / "echo.gen"
    path.write_text(PROGRAM)
    return path


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_syntax_error_prints_location_line_and_caret(tmp_path, capsys):
    path = tmp_path / "bad.gen"
    path.write_text('program p() -> str:\n    x = gen max tokens\n')
    code, _, err = run_cli(capsys, "run", str(path))
    assert code == 2
    lines = err.splitlines()
    assert lines[0].startswith(f"{path}:2:17: unexpected 'tokens'")
    assert lines[1].strip() == "x = gen max tokens"
    assert lines[2].index("^") == 4 + 16


def test_check_reports_ok_and_errors(tmp_path, program_file, capsys):
    code, out, _ = run_cli(capsys, "check", str(program_file))
    assert code == 0 and "ok (1 program(s): echo)" in out
    bad = tmp_path / "bad.gen"
    bad.write_text('program p() -> str:\n    return nope\n')
    code, _, err = run_cli(capsys, "check", str(bad))
    assert code == 2 and f"{bad}:2:12: unknown name 'nope'" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--arg", "other=1"], "has no parameter 'other'"),
    ([], "needs argument 'word'"),
    (["--arg", "word"], "is not NAME=VALUE"),
    (["--arg", "word=a", "--arg", "word=b"], "'word' is given twice"),
    (["--arg", "word=a", "--program", "nope"], "has no program 'nope'"),
    (["--arg", "word=a", "--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["--arg", "word=a", "--draws", "0"], "draws must be >= 1"),
])
def test_bad_invocations_give_one_clear_line(program_file, capsys, argv, message):
    code, out, err = run_cli(capsys, "run", str(program_file), *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) <= 2  # the message and at most a hint


def test_unreadable_file(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", str(tmp_path / "missing.gen"))
    assert code == 2 and "no such file" in err


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "genweave.cli", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "run" in out and "check" in out


def test_errors_exit_2_without_traceback_in_a_real_process(tmp_path):
    path = tmp_path / "bad.gen"
    path.write_text('program p(:\n')
    proc = subprocess.run([sys.executable, "-m", "genweave.cli", "run", str(path)], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and f"{path}:1:11:" in proc.stderr


@pytest.mark.model
def test_run_json_on_the_embedded_model(program_file, capsys):
    code, out, _ = run_cli(capsys, "run", str(program_file), "--arg", "word=hello", "--json")
    assert code == 0
    (draw,) = json.loads(out)
    assert set(draw) == {"value", "holes", "text", "logprob", "weight", "tokens", "guarantee"}
    assert draw["text"].startswith("Say hello:") and draw["holes"]["x"] == draw["value"]
    assert len(draw["tokens"]) > 2


EXTERN_PROGRAM = '''\
predicate ok = extern "hostpreds:anything"
program p() -> str:
  target:
    "Say hi:"
    x = gen max 2 tokens
    if not ok(x):
        " (rejected)"
    return x
'''


@pytest.mark.model
def test_externs_need_allow_python(tmp_path, capsys):
    path = tmp_path / "ext.gen"
    path.write_text(EXTERN_PROGRAM)
    (tmp_path / "hostpreds.py").write_text("CALLS = []\ndef anything(text):\n    CALLS.append(text)\n    return True\n")
    code, _, err = run_cli(capsys, "run", str(path))
    assert code == 2 and "needs the host function 'hostpreds:anything'" in err and "--allow-python" in err
    code, out, err = run_cli(capsys, "run", str(path), "--allow-python", "--seed", "0")
    assert code == 0, err
    import hostpreds

    assert hostpreds.CALLS and out.strip() == hostpreds.CALLS[-1].strip()
