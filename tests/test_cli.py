"""The `benchbench` console script: the models table and one-line errors with exit status 2."""

import subprocess
import sys
import textwrap

import pytest

import benchbench
from support.cli import main


def test_models_table_lists_family_params_and_reference(capsys):
    code, out, err = main(["models", "shiftvit_t*"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["model", "family", "params", "(M)"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == {"shiftvit_t", "shiftvit_t_light"}
    assert "19.61" in rows["shiftvit_t_light"] and "1000 cls @ 224 px" in rows["shiftvit_t_light"]
    assert "arXiv 2201.10801" in rows["shiftvit_t"]
    assert err == ""


def test_models_lists_the_swin_variants_and_their_matched_pair(capsys):
    code, out, err = main(["models", "swin*"], capsys)
    assert code == 0, err
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert set(rows) == {"swin_s", "swin_t"}
    assert rows["swin_t"][2] == "28.29" and rows["swin_s"][2] == "49.61"  # the official 28,288,354 and 49,606,258
    assert rows["swin_t"][8] == "shiftvit_t_light" and "arXiv 2103.14030" in out


def every_option():
    """(command, argparse action) for every option and argument of every subcommand, hidden ones left out."""
    import argparse

    from benchbench.cli import build_parser

    def walk(parser, command):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{command} {name}")
            elif action.help != argparse.SUPPRESS and action.dest not in ("help", "version"):
                yield command, action

    return list(walk(build_parser(), "benchbench"))


def test_every_option_of_every_command_says_what_it_does_and_its_default():
    import argparse

    options = every_option()
    assert len(options) > 80
    for command, action in options:
        name = f"{command} {'/'.join(action.option_strings) or action.dest}"
        assert action.help and len(action.help) > 10, f"{name} has no help"
        flag = action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction)
        if action.option_strings and not (flag or action.required):
            assert "default" in action.help or "required" in action.help, f"{name}: no default said"


def test_models_answers_at_once_without_importing_keras():
    """The catalogue is read from a file (benchbench/model_catalogue.py): no model is built, no backend loaded."""
    import time

    code = ("import sys; from benchbench.cli import main; main(['models']); "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - start
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "[]", result.stderr
    assert "vit_tiny" in result.stdout and seconds < 3, seconds  # 0.15 s on the 2-core EPYC


def test_verbose_shows_what_is_hidden_by_default():
    """TensorFlow's native log lines (oneDNN, CUDA probing) are hidden unless --verbose, typed after the command."""
    from support.cli import run_cli

    quiet, loud = run_cli("datasets"), run_cli("datasets", "--verbose")
    assert quiet.returncode == loud.returncode == 0
    assert quiet.stderr == "" and "oneDNN" in loud.stderr and quiet.stdout == loud.stdout


def test_models_markdown_format(capsys):
    code, out, _ = main(["models", "mobilevit_xxs", "--format", "github"], capsys)
    assert code == 0
    assert out.splitlines()[1].startswith("|---")
    assert "| 1.27 " in out


@pytest.mark.parametrize("args,message", [
    (["models", "vitt"], "no model matches 'vitt'; did you mean vit_tiny"),
    (["modles"], "invalid choice: 'modles'"),
    ([], "the following arguments are required: COMMAND"),
    (["models", "--format", "html"], "invalid choice: 'html'"),
])
def test_usage_errors_are_one_line_with_exit_2(args, message, capsys):
    code, out, err = main(args, capsys)
    assert code == 2
    assert err.count("\n") == 1 and message in err
    assert "Traceback" not in err and out == ""


def test_console_script_is_installed():
    import shutil
    from pathlib import Path

    script = shutil.which("benchbench") or str(Path(sys.executable).parent / "benchbench")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "models" in result.stdout
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, f"benchbench {benchbench.__version__}\n")


def test_sigterm_inside_a_finalizer_still_stops_the_command_without_a_traceback():
    """A signal that lands in a weakref callback (SQLAlchemy's registry cleans up in one) cannot propagate from
    there; console re-sends it, so it stops the command at the next line instead of printing a traceback."""
    code = """if True:
        import os, signal, sys, time, weakref
        from benchbench import console
        console.stop_on_sigterm()
        class Thing: pass
        thing = Thing()
        ref = weakref.ref(thing, lambda _: os.kill(os.getpid(), signal.SIGTERM) or sum(range(1000)))
        try:
            del thing
            start = time.monotonic()
            while time.monotonic() - start < 5:
                pass
            print("still running")
        except console.Terminated:
            print("terminated")
    """
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "terminated" and result.stderr == "", result.stderr



# The unraisable hook's view of a signal: a SIGTERM that lands at the hook's first line (the handler called with
# the hook's frame, as Python would), or a SIGINT that arrived while a SIGTERM unwound a finalizer.
LANDS_IN_HOOK = """
    @property
    def exc_value(self):
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, sys._getframe(1))
        return KeyboardInterrupt()
"""
CHAINED = """
    exc_value = console.Terminated()
    exc_value.__context__ = KeyboardInterrupt()
"""
# C code that called back into Python and reports the signal's exception it could not raise (TensorFlow's nest
# flattening, seen in CI): CPython wraps it as the cause of a SystemError.
WRAPPED = """
    exc_value = SystemError("<built-in function __import__> returned a result with an exception set")
    exc_value.__cause__ = exc_value.__context__ = KeyboardInterrupt()
"""


@pytest.mark.parametrize("unraisable,raised", [(LANDS_IN_HOOK, ["KeyboardInterrupt", "Terminated"]),
                                               (CHAINED, ["KeyboardInterrupt", "Terminated"]),
                                               (WRAPPED, ["KeyboardInterrupt"])],
                         ids=["lands-in-hook", "chained", "wrapped"])
def test_no_signal_is_lost_in_the_resend_hook(unraisable, raised):
    """Under load the helper's resend landed while the hook still ran (a worker printed the hook's traceback and
    trained on until killed 30 s later): each signal the hook sees must be raised again at an ordinary line,
    with nothing printed, and code that catches ordinary errors can ask whether a stop is under way."""
    code = f"""if True:
        import signal, sys, time
        from benchbench import console
        console.stop_on_sigterm()
        class Unraisable:{textwrap.indent(unraisable, " " * 8)}
        def spin():
            start = time.monotonic()
            while time.monotonic() - start < 5:
                pass
        caught = []
        try:
            try:
                sys.unraisablehook(Unraisable())
                spin()
            except KeyboardInterrupt as first:
                caught.append(type(first).__name__)
                spin()
        except KeyboardInterrupt as second:
            caught.append(type(second).__name__)
        print(sorted(caught), isinstance(console.stop_requested(), KeyboardInterrupt))
    """
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == f"{raised} True" and result.stderr == "", result.stderr
