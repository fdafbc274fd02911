# Terminals inside JupyterLab (started by `make lab`) run bash with this file instead of
# ~/.bashrc: your usual setup first, then the project's environment, so `llmlab` and the
# right `python` are on PATH (a login shell's /etc/profile would otherwise reset PATH).
[ -f /etc/bash.bashrc ] && . /etc/bash.bashrc
[ -f "$HOME/.bashrc" ] && . "$HOME/.bashrc"
LLMLAB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -f "$LLMLAB_ROOT/.venv/bin/activate" ]; then
  . "$LLMLAB_ROOT/.venv/bin/activate"
fi
