// The pieces both HTML reports share: escaping every text that comes from a policy or
// an audit store (a label is data, never markup), and the page around a report — one
// self-contained file with its style inline, fonts that Debian's fonts-noto-cjk
// provides named first, and print rules so that printing to PDF gives a clean copy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace flowgate::cli::html {

// `text` with &, <, >, " and ' replaced by character references: safe as element
// content and inside a double- or single-quoted attribute value.
std::string escape(std::string_view text);
void append_escaped(std::string& out, std::string_view text);

// One figure of a report's row of figures: its value (in data-figure="name", for the
// tests) above its label.
void figure(std::string& out, std::string_view name, std::string_view label, std::uint64_t value);

// The document up to and including <body>, with `title` (escaped) as its title; the
// style sheet is inline and the Content-Security-Policy forbids every fetch and every
// script, so a page that tried to load anything would show it as a console error.
std::string page_begin(std::string_view title);
// Closes what page_begin opened.
std::string page_end();

} // namespace flowgate::cli::html
