"""Packaging extra that pyproject.toml cannot express: install the lm-eval 0.4.13 startup hook.

`harness/threadweaver_lmeval.pth` must sit at the top of site-packages (see harness/lmeval_hook.py). A
wheel puts files at the root of build_lib there; an editable install (PEP 660) puts the root of
install_lib there. Everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "threadweaver_lmeval.pth"


class build_py_with_hook(build_py):  # noqa: N801 - setuptools command naming
    def run(self) -> None:
        super().run()
        root = self.get_finalized_command("install").install_lib if self.editable_mode else self.build_lib
        self.copy_file(str(Path(__file__).parent / "harness" / PTH), str(Path(root) / PTH))


setup(cmdclass={"build_py": build_py_with_hook})
