// Escaping and the page shell shared by `flowgate policy report` and `audit report`.
#include "cli/html.hpp"

namespace flowgate::cli::html {

void append_escaped(std::string& out, std::string_view text) {
    for (char c : text) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&#39;";
            break;
        default:
            out += c;
        }
    }
}

std::string escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    append_escaped(out, text);
    return out;
}

void figure(std::string& out, std::string_view name, std::string_view label, std::uint64_t value) {
    out += "<div class=\"figure\"><span class=\"value\" data-figure=\"";
    out += name;
    out += "\">" + std::to_string(value) + "</span>";
    append_escaped(out, label);
    out += "</div>";
}

namespace {

constexpr std::string_view style = R"css(
:root { --allow: #2e7d32; --cond: #b26a00; --deny: #b71c1c; --ink: #1a1a1a; --muted: #5f6368;
  --rule: #d0d4d9; --band: #f3f5f7; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", "Yu Gothic", "Meiryo",
  sans-serif; color: var(--ink); margin: 2rem auto; max-width: 78rem; padding: 0 1.5rem;
  font-size: 14px; line-height: 1.5; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid var(--ink); padding-bottom: .2rem;
  margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
code, .mono { font-family: "Noto Sans Mono CJK JP", "DejaVu Sans Mono", monospace;
  font-size: .92em; }
.muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; }
th, td { border: 1px solid var(--rule); padding: .25rem .45rem; vertical-align: top;
  text-align: left; }
thead th { background: var(--band); }
.figures { display: flex; flex-wrap: wrap; gap: .6rem; margin: 1rem 0; }
.figure { border: 1px solid var(--rule); border-radius: 4px; padding: .4rem .8rem;
  min-width: 8rem; }
.figure .value { font-size: 1.5rem; font-weight: bold; display: block; }
.badge { display: inline-block; border-radius: 3px; padding: 0 .3rem; font-size: .8em;
  border: 1px solid currentColor; margin-left: .2rem; white-space: nowrap; }
.special_care { color: #8e24aa; }
.specific { color: #c62828; }
.kind { color: #37474f; }
.matrix td.cell { text-align: center; font-size: .85em; }
.matrix td.cell code { word-break: break-all; font-size: .85em; }
.matrix th { font-size: .9em; }
.matrix td.allow { background: #e8f5e9; color: var(--allow); }
.matrix td.conditional { background: #fff3e0; color: var(--cond); }
.matrix td.deny { background: #ffebee; color: var(--deny); }
.matrix td.cell .mark { font-size: 1.1rem; display: block; font-weight: bold; }
.legend span { margin-right: 1rem; }
.verdict { border-left: 6px solid var(--allow); padding: .5rem .9rem; background: var(--band); }
.verdict.failed { border-color: var(--deny); }
figure { margin: 1rem 0; }
pre.detail { white-space: pre-wrap; word-break: break-all; margin: 0; font-size: .85em; }
tr.stands-out td { background: #fff3e0; }
figcaption { font-weight: bold; margin-bottom: .3rem; }
svg { max-width: 100%; height: auto; }
svg text { font-family: inherit; font-size: 12px; fill: var(--ink); }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2 { break-after: avoid-page; }
  section.purpose { break-before: page; }
  table, figure { break-inside: auto; }
  tr, .figure, svg { break-inside: avoid; }
  thead { display: table-header-group; }
  .matrix { font-size: 7.5pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  @page { size: A4 landscape; margin: 12mm; }
}
)css";

} // namespace

std::string page_begin(std::string_view title) {
    std::string out = "<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"utf-8\">\n"
                      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                      "style-src 'unsafe-inline'\">\n"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                      "<title>";
    append_escaped(out, title);
    out += "</title>\n<style>";
    out += style;
    out += "</style>\n</head>\n<body>\n";
    return out;
}

std::string page_end() {
    return "</body>\n</html>\n";
}

} // namespace flowgate::cli::html
