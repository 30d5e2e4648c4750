"""`python -m lora_drop_torch REQUEST.json`: runs one request and exits (0 done, 2 typed error, 130 cancelled, 1 bug)."""
import sys

# Checked before anything newer is parsed, so an old interpreter says what is wrong instead of a SyntaxError.
if sys.version_info < (3, 8):
    sys.stderr.write("lora_drop_torch needs Python 3.8 or newer, not " + sys.version.split()[0] + "\n")
    sys.stdout.write('{"type":"error","code":"MISSING_DEPENDENCY","message":"Python ' + sys.version.split()[0]
                     + ' is too old: the torch engine needs Python 3.8 or newer"}\n')
    sys.exit(2)

from .main import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
