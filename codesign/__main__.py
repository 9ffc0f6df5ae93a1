from codesign.cli import run

run()
