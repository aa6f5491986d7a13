"""The Dockerfile, checked without a container engine.

The build stage must build as the README does (scripts/setup.sh, the "default" preset, the
binary at build/default/proxy/tokentap), from a context that .dockerignore leaves complete
enough to configure; the runtime stage must install a Debian package for every shared library
the real binary links (ldd + dpkg -S on this Debian build), run as a numeric non-root user and
start tokentap.
"""

import fnmatch
import os
import re
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# Part of every Debian image, slim included.
BASE_PACKAGES = {"libc6"}


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def stages():
    """[(FROM line, [instructions with continuation lines joined])]"""
    text = re.sub(r"\\\n", " ", read("Dockerfile"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            result.append((line, []))
        else:
            result[-1][1].append(line)
    return result


def ignore_patterns():
    return [line.strip() for line in read(".dockerignore").splitlines()
            if line.strip() and not line.startswith("#")]


def ignored(relative_path, patterns):
    path = relative_path.rstrip("/")
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in path.split("/")):
                return True
        elif fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            return True
    return False


def runtime_packages():
    _, instructions = stages()[-1]
    packages = set()
    for instruction in instructions:
        for command in instruction.split("&&"):
            words = command.split()
            if words[:2] == ["RUN", "apt-get"] or words[:1] == ["apt-get"]:
                if "install" in words:
                    packages.update(w for w in words[words.index("install") + 1:]
                                    if not w.startswith("-"))
    return packages


def owning_package(library):
    real = os.path.realpath(library)
    for candidate in (library, real, "/usr" + library, "/usr" + real):
        result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout.split(":", 1)[0]
    raise AssertionError(f"no Debian package owns {library}")


class DockerfileTest(unittest.TestCase):
    def test_two_stages_on_bookworm(self):
        [(build_from, _), (runtime_from, _)] = stages()
        self.assertRegex(build_from, r"^FROM debian:bookworm AS build$")
        self.assertEqual(runtime_from, "FROM debian:bookworm-slim")

    def test_build_stage_builds_as_the_readme_does(self):
        _, instructions = stages()[0]
        run = " ".join(i for i in instructions if i.startswith("RUN "))
        self.assertIn("bash scripts/setup.sh", run)
        self.assertIn("cmake --preset default", run)
        self.assertIn("--target tokentap", run)
        self.assertIn("build/default/proxy/tokentap", run)
        # tests/ is not in the build context, so CTest must not look for it.
        self.assertTrue(ignored("tests/integration/harness.py", ignore_patterns()))
        self.assertIn("-DBUILD_TESTING=OFF", run)
        self.assertIn("build/default/proxy/tokentap", read("scripts/run.sh"))

    def test_build_context_keeps_what_the_build_needs(self):
        patterns = ignore_patterns()
        needed = ["CMakeLists.txt", "CMakePresets.json", "cmake/dependencies.cmake",
                  "scripts/setup.sh", "pricing/prices.json"]
        needed += [f"{d}/CMakeLists.txt" for d in
                   re.findall(r"add_subdirectory\((\w+)\)", read("CMakeLists.txt")) if d != "tests"]
        for path in needed:
            self.assertTrue(os.path.exists(os.path.join(ROOT, path)), path)
            self.assertFalse(ignored(path, patterns), f".dockerignore drops {path}")

    def test_build_stage_configures_from_the_build_context(self):
        """scripts/setup.sh and the configure step of the build stage, on a copy of exactly
        the files .dockerignore lets into the context (compiling is left to the real build)."""
        patterns = ignore_patterns()
        with tempfile.TemporaryDirectory(prefix="tokentap-image-") as context:
            for directory, subdirs, files in os.walk(ROOT):
                relative = os.path.relpath(directory, ROOT)
                relative = "" if relative == "." else relative + "/"
                subdirs[:] = [d for d in subdirs if not ignored(relative + d + "/", patterns)]
                for name in files:
                    if not ignored(relative + name, patterns):
                        os.makedirs(os.path.join(context, relative), exist_ok=True)
                        shutil.copy2(os.path.join(directory, name), os.path.join(context, relative))
            self.assertFalse(os.path.exists(os.path.join(context, "tests")))
            for command in (["bash", "scripts/setup.sh"],
                            ["cmake", "--preset", "default", "-DBUILD_TESTING=OFF"]):
                result = subprocess.run(command, cwd=context, capture_output=True, text=True,
                                        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
                self.assertEqual(result.returncode, 0,
                                 f"{' '.join(command)}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def test_runtime_stage_has_a_package_for_every_linked_library(self):
        binary = os.environ.get("TOKENTAP_BIN")
        self.assertTrue(binary, "set TOKENTAP_BIN (ctest does)")
        output = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
        libraries = re.findall(r"=> (/\S+)", output)
        self.assertGreater(len(libraries), 5)
        needed = {owning_package(lib) for lib in libraries} - BASE_PACKAGES
        missing = needed - runtime_packages()
        self.assertEqual(missing, set(), "runtime stage lacks packages for linked libraries")
        self.assertIn("ca-certificates", runtime_packages())

    def test_runtime_stage_runs_tokentap_as_non_root(self):
        _, instructions = stages()[-1]
        users = [i for i in instructions if i.startswith("USER ")]
        self.assertEqual(len(users), 1)
        uid, _, gid = users[0].split()[1].partition(":")
        self.assertTrue(uid.isdigit() and gid.isdigit() and int(uid) > 0 and int(gid) > 0, users)
        self.assertIn('ENTRYPOINT ["/usr/local/bin/tokentap"]', instructions)
        copies = [i for i in instructions if i.startswith("COPY --from=build")]
        self.assertTrue(any(i.endswith("/usr/local/bin/tokentap") for i in copies), copies)


if __name__ == "__main__":
    unittest.main()
