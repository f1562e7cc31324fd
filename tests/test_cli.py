import subprocess
import sys

from avgen.cli import SUBCOMMANDS, main


def test_help_lists_every_subcommand(capsys):
    assert main([]) == 0
    text = capsys.readouterr().out
    for name in ("generate", "foley", "edit", "batch", "inspect", "eval", "train"):
        assert name in SUBCOMMANDS and name in text


def test_console_script_help_runs():
    result = subprocess.run([sys.executable, "-m", "avgen.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "avgen" in result.stdout


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("avgen ")


def test_a_subcommand_not_built_yet_says_so(capsys):
    import avgen.cli as cli

    cli.SUBCOMMANDS["future"] = ("avgen.commands.not_built_yet", "a later issue's subcommand")
    try:
        assert main(["future", "some prompt", "-o", "x.mp4"]) == 2
        assert "not available" in capsys.readouterr().err
    finally:
        del cli.SUBCOMMANDS["future"]
