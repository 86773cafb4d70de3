// Bar charts as inline SVG, for the HTML reports: a page that draws its charts itself
// fetches nothing and prints as it shows. Two shapes cover the reports: horizontal
// bars (one per label, e.g. per recipient) and columns over time (one per day), each
// bar stacked from one or more series. Every text is escaped; every bar is a
// <rect class="bar"> carrying its series, value and key, so a test can read what was
// drawn.
#pragma once

#include <string>
#include <vector>

namespace flowgate::cli::svg {

struct Series {
    std::string name;
    std::string color; // a CSS colour, written by our code, never from data
};

struct Bar {
    std::string label;
    std::vector<double> values; // one per series
    std::string key = {};       // what the bar counts (an identifier), for data-key
};

struct BarChart {
    std::string id; // the <svg>'s id
    std::string title;
    std::vector<Series> series;
    std::vector<Bar> bars;
};

// One row per bar, its label at the left, stacked segments and the total at the right.
std::string horizontal_bars(const BarChart& chart);
// One column per bar, labels under the axis (every few when there are many).
std::string columns(const BarChart& chart);

} // namespace flowgate::cli::svg
