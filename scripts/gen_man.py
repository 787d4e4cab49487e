#!/usr/bin/env python3
"""gen_man.py — the section-3 man pages, made from the public headers.

The headers' comments are the reference (include/multiproc/*.h); the pages
are a copy of them that `man` can show, so they are made from the headers and
never edited by hand:

  man/man3/multiproc.3            the library: the umbrella header's comment
                                  and the list of module pages
  man/man3/multiproc_<module>.3   one per module header: its comment, then
                                  every MP_API function with its comment
  man/man3/<function>.3           one per MP_API function: its prototype and
                                  comment, and the module page to read next

Usage:
  scripts/gen_man.py            write the pages into man/man3 (and remove
                                pages of functions that no longer exist)
  scripts/gen_man.py --check    write nothing; exit 1 when a page is missing,
                                differs from what the headers give, or is
                                left over, or when an MP_API function has no
                                comment (each names what to do)
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = os.path.join(ROOT, "include")
MANDIR = os.path.join(ROOT, "man", "man3")


def version():
    with open(os.path.join(INCLUDE, "multiproc", "version.h")) as f:
        m = re.search(r'#define MP_VERSION_STRING "([^"]+)"', f.read())
    return m.group(1)


def comment_text(block):
    """The text of a /* ... */ block, without the comment marks."""
    body = block[2:-2]
    lines = body.split("\n")
    out = []
    for line in lines:
        line = line.rstrip()
        stripped = line.lstrip()
        if stripped.startswith("* ") or stripped == "*":
            line = stripped[2:]
        elif stripped.startswith("*"):
            line = stripped[1:]
        else:
            line = line.strip() if not out else line
        out.append(line)
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def parse_header(path):
    """Returns (header comment lines, [(name, prototype, comment lines)])."""
    with open(path) as f:
        text = f.read()
    first = re.match(r"\s*(/\*.*?\*/)", text, re.S)
    intro = comment_text(first.group(1)) if first else []
    funcs = []
    doc = None  # the top-level comment that the next declarations share
    i = 0
    n = len(text)
    while i < n:
        if text.startswith("/*", i) and (i == 0 or text[i - 1] == "\n"):
            end = text.index("*/", i) + 2
            doc = comment_text(text[i:end])
            i = end
        elif text.startswith("MP_API", i) and (i == 0 or text[i - 1] == "\n"):
            end = text.index(";", i) + 1
            proto = " ".join(text[i + len("MP_API"):end].split())
            m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", proto)
            funcs.append((m.group(1), proto, doc))
            i = end
        elif text[i] in " \t\n":
            i += 1
        else:
            # Anything else at top level (a type, a brace) ends the reach of
            # the comment above it; a macro defined between a comment and its
            # function (a constant for its arguments) does not.
            if not text.startswith("#define", i):
                doc = None
            i = text.find("\n", i)
            if i < 0:
                break
    return intro, funcs


def roff_escape(line):
    out = []
    for ch in line:
        if ch == "\\":
            out.append("\\e")
        elif ch == "-":
            out.append("\\-")
        elif ord(ch) > 127:
            out.append("\\[u%04X]" % ord(ch))
        else:
            out.append(ch)
    s = "".join(out)
    if s.startswith(".") or s.startswith("'"):
        s = "\\&" + s
    return s


def preformatted(lines):
    out = [".nf"]
    for line in lines:
        out.append(roff_escape(line) if line.strip() else "")
    out.append(".fi")
    # roff treats an empty line as a blank line in .nf mode; keep it so.
    return out


def first_sentence(lines):
    """The first sentence of a comment's first paragraph, on one line (up
    to the first full stop)."""
    para = []
    for line in lines:
        if not line.strip():
            break
        para.append(line.strip())
    text = " ".join(para)
    m = re.match(r"(.*?\.)(\s|$)", text)
    return (m.group(1) if m else text).rstrip(".")


def summary(name, doc):
    """The one-line summary of a function: the first sentence of its
    comment (or of the comment it shares), without a leading 'name — '."""
    if not doc:
        return name
    first = first_sentence(doc)
    m = re.match(r"\s*[A-Za-z0-9_/, ]+\s+[—-]+\s+(.*)", first)
    return m.group(1) if m else first


def th(title, ver):
    return ['.TH %s 3 "" "multiproc %s" "multiproc manual"' % (title.upper(), ver)]


def module_page(module, intro, funcs, ver):
    header = "multiproc/%s.h" % module
    page = th("multiproc_" + module, ver)
    page += [".SH NAME", "multiproc_%s \\- %s" % (module, roff_escape(module_summary(intro)))]
    page += [".SH SYNOPSIS", ".nf", ".B #include <%s>" % header, ".fi"]
    page += [".SH DESCRIPTION"] + preformatted(intro)
    if funcs:
        page += [".SH FUNCTIONS"]
        for name, proto, doc in funcs:
            page += [".SS %s" % name, ".nf", ".B %s" % roff_escape(proto), ".fi"]
            page += preformatted(doc or [])
    page += [".SH SEE ALSO", "\\fBmultiproc\\fR(3)"]
    return "\n".join(page) + "\n"


def module_summary(intro):
    first = first_sentence(intro)
    m = re.match(r"multiproc\s+[—-]+\s+(.*)", first)
    return m.group(1) if m else first


def function_page(module, name, proto, doc, ver):
    page = th(name, ver)
    page += [".SH NAME", "%s \\- %s" % (name, roff_escape(summary(name, doc)))]
    page += [".SH SYNOPSIS", ".nf", ".B #include <multiproc.h>",
             "(or \\fB#include <multiproc/%s.h>\\fR)" % module, "", ".B %s" % roff_escape(proto),
             ".fi", ".PP", "Link with \\fI\\-lmultiproc\\fR (\\fBpkg\\-config \\-\\-libs multiproc\\fR)."]
    page += [".SH DESCRIPTION"] + preformatted(doc or [])
    page += [".SH SEE ALSO", "\\fBmultiproc_%s\\fR(3), the whole module, and \\fBmultiproc\\fR(3)"
             % module]
    return "\n".join(page) + "\n"


def library_page(modules, ver):
    with open(os.path.join(INCLUDE, "multiproc.h")) as f:
        m = re.match(r"\s*(/\*.*?\*/)", f.read(), re.S)
    intro = comment_text(m.group(1))
    page = th("multiproc", ver)
    page += [".SH NAME", "multiproc \\- %s" % roff_escape(module_summary(intro))]
    page += [".SH SYNOPSIS", ".nf", ".B #include <multiproc.h>", ".fi", ".PP",
             "Link with \\fI\\-lmultiproc\\fR (\\fBpkg\\-config \\-\\-cflags \\-\\-libs multiproc\\fR)."]
    page += [".SH DESCRIPTION"] + preformatted(intro)
    page += [".SH MODULES", "Each module page lists its functions; each function also has its own page."]
    for module, intro_m, funcs in modules:
        page += [".TP", "\\fBmultiproc_%s\\fR(3)" % module,
                 "%s (%d functions)" % (roff_escape(module_summary(intro_m)), len(funcs))]
    return "\n".join(page) + "\n"


def pages():
    """Every page, as {file name: text}, and the problems found."""
    ver = version()
    modules = []
    problems = []
    seen = {}
    hdir = os.path.join(INCLUDE, "multiproc")
    for fname in sorted(os.listdir(hdir)):
        if not fname.endswith(".h"):
            continue
        module = fname[:-2]
        intro, funcs = parse_header(os.path.join(hdir, fname))
        for name, _, doc in funcs:
            if not doc:
                problems.append("include/multiproc/%s: %s has no comment above it" % (fname, name))
            if name in seen:
                problems.append("%s is declared in %s and %s" % (name, seen[name], fname))
            seen[name] = fname
        modules.append((module, intro, funcs))
    out = {"multiproc.3": library_page(modules, ver)}
    for module, intro, funcs in modules:
        if funcs:
            out["multiproc_%s.3" % module] = module_page(module, intro, funcs, ver)
        for name, proto, doc in funcs:
            out["%s.3" % name] = function_page(module, name, proto, doc, ver)
    return out, problems


def main(argv):
    check = argv[1:] == ["--check"]
    if argv[1:] and not check:
        print(__doc__, file=sys.stderr)
        return 2
    want, problems = pages()
    have = set(os.listdir(MANDIR)) if os.path.isdir(MANDIR) else set()
    if check:
        for name in sorted(want):
            path = os.path.join(MANDIR, name)
            if name not in have:
                problems.append("man/man3/%s is missing" % name)
            else:
                with open(path) as f:
                    if f.read() != want[name]:
                        problems.append("man/man3/%s differs from the headers" % name)
        for name in sorted(have - set(want)):
            problems.append("man/man3/%s has no function or module in the headers" % name)
        for p in problems:
            print("gen_man: " + p, file=sys.stderr)
        if problems:
            print("gen_man: run scripts/gen_man.py and commit man/man3", file=sys.stderr)
            return 1
        print("gen_man: %d pages match include/multiproc/*.h" % len(want))
        return 0
    if problems:
        for p in problems:
            print("gen_man: " + p, file=sys.stderr)
        return 1
    os.makedirs(MANDIR, exist_ok=True)
    for name in sorted(have - set(want)):
        os.remove(os.path.join(MANDIR, name))
    for name, text in want.items():
        with open(os.path.join(MANDIR, name), "w") as f:
            f.write(text)
    print("gen_man: wrote %d pages into man/man3" % len(want))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
