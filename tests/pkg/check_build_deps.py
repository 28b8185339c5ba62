"""tests/pkg/check_build_deps.py: the three lists of mika's build packages agree.

scripts/deps.sh's build_pkgs (what `make build` installs on the host),
debian/control's Build-Depends (what `make deb` needs) and the Dockerfile's
build stage (what the image is built with) must name the same -dev
packages: a store client library added to one and not the others breaks
the .deb or the image only, in the slow packaging tests.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def dev_packages(words):
    return {w.strip(',') for w in words if w.strip(',').endswith('-dev')}


def main():
    deps = re.search(r'^build_pkgs="([^"]*)"', read('scripts', 'deps.sh'), re.M).group(1)
    control = re.search(r'^Build-Depends:(.*?)^\S', read('debian', 'control'), re.M | re.S).group(1)
    control = re.sub(r'\([^)]*\)', '', control)
    docker = re.search(r'^FROM \S+ AS build\n(.*?)^COPY', read('Dockerfile'), re.M | re.S).group(1)
    lists = {'scripts/deps.sh build_pkgs': dev_packages(deps.split()),
             'debian/control Build-Depends': dev_packages(control.split()),
             'Dockerfile build stage': dev_packages(docker.replace('\\', ' ').split())}
    every = set().union(*lists.values())
    bad = ['%s lacks %s' % (name, ', '.join(sorted(every - have)))
           for name, have in lists.items() if every - have]
    if bad:
        sys.exit('build packages differ: ' + '; '.join(bad))
    print('build packages: %d -dev packages, the same in deps.sh, debian/control and the '
          'Dockerfile' % len(every))


if __name__ == '__main__':
    main()
