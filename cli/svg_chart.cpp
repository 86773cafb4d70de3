// The reports' bar charts: layout by hand over a linear scale, nothing more.
#include "cli/svg_chart.hpp"
#include "cli/html.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace flowgate::cli::svg {
namespace {

std::string number(double value) {
    char buffer[32];
    if (value == std::floor(value) && std::fabs(value) < 1e15) {
        std::snprintf(buffer, sizeof buffer, "%.0f", value);
    } else {
        std::snprintf(buffer, sizeof buffer, "%.1f", value);
    }
    return buffer;
}

// At most `limit` code points of `label`, cut with an ellipsis: a long label would run
// off the chart's left edge. The whole label stays in the bar's <title>.
std::string shortened(const std::string& label, std::size_t limit = 24) {
    std::size_t points = 0;
    for (std::size_t i = 0; i < label.size(); ++i) {
        if ((static_cast<unsigned char>(label[i]) & 0xC0) != 0x80 && ++points > limit) {
            return label.substr(0, i) + "…";
        }
    }
    return label;
}

double total(const Bar& bar) {
    return std::accumulate(bar.values.begin(), bar.values.end(), 0.0);
}

double largest(const BarChart& chart) {
    double most = 0;
    for (const Bar& bar : chart.bars) {
        most = std::max(most, total(bar));
    }
    return most > 0 ? most : 1;
}

void open_svg(std::string& out, const BarChart& chart, double width, double height) {
    out += "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"";
    html::append_escaped(out, chart.id);
    out += "\" viewBox=\"0 0 " + number(width) + " " + number(height) + "\" width=\"" +
           number(width) + "\" role=\"img\" aria-label=\"";
    html::append_escaped(out, chart.title);
    out += "\">\n<title>";
    html::append_escaped(out, chart.title);
    out += "</title>\n";
}

void legend(std::string& out, const BarChart& chart, double x, double y) {
    if (chart.series.size() < 2) {
        return;
    }
    for (const Series& series : chart.series) {
        out += "<rect x=\"" + number(x) + "\" y=\"" + number(y - 10) +
               "\" width=\"10\" height=\"10\" fill=\"" + series.color + "\"/>";
        out += "<text x=\"" + number(x + 14) + "\" y=\"" + number(y) + "\">";
        html::append_escaped(out, series.name);
        out += "</text>\n";
        x += 24 + 7.5 * static_cast<double>(series.name.size());
    }
}

void segment(std::string& out, const Series& series, const Bar& bar, double value, double x,
             double y, double w, double h) {
    out += "<rect class=\"bar\" data-series=\"";
    html::append_escaped(out, series.name);
    out += "\" data-label=\"";
    html::append_escaped(out, bar.label);
    if (!bar.key.empty()) {
        out += "\" data-key=\"";
        html::append_escaped(out, bar.key);
    }
    out += "\" data-value=\"" + number(value) + "\" x=\"" + number(x) + "\" y=\"" + number(y) +
           "\" width=\"" + number(std::max(w, 0.0)) + "\" height=\"" + number(std::max(h, 0.0)) +
           "\" fill=\"" + series.color + "\"><title>";
    html::append_escaped(out, bar.label + " — " + series.name + ": " + number(value));
    out += "</title></rect>\n";
}

} // namespace

std::string horizontal_bars(const BarChart& chart) {
    const double label_width = 300;
    const double plot_width = 520;
    const double row = 22;
    const double top = chart.series.size() > 1 ? 26 : 8;
    const double width = label_width + plot_width + 70;
    const double height = top + row * static_cast<double>(chart.bars.size()) + 8;
    const double scale = plot_width / largest(chart);
    std::string out;
    open_svg(out, chart, width, height);
    legend(out, chart, label_width, 14);
    double y = top;
    for (const Bar& bar : chart.bars) {
        out += "<text x=\"" + number(label_width - 8) + "\" y=\"" + number(y + 15) +
               "\" text-anchor=\"end\">";
        html::append_escaped(out, shortened(bar.label));
        out += "</text>\n";
        double x = label_width;
        for (std::size_t s = 0; s < chart.series.size() && s < bar.values.size(); ++s) {
            double w = bar.values[s] * scale;
            if (bar.values[s] > 0) {
                segment(out, chart.series[s], bar, bar.values[s], x, y + 3, w, row - 6);
            }
            x += w;
        }
        out += "<text class=\"total\" x=\"" + number(x + 6) + "\" y=\"" + number(y + 15) + "\">" +
               number(total(bar)) + "</text>\n";
        y += row;
    }
    out += "</svg>\n";
    return out;
}

std::string columns(const BarChart& chart) {
    const double left = 50;
    const double plot_height = 220;
    const double top = 30;
    const double count = static_cast<double>(std::max<std::size_t>(chart.bars.size(), 1));
    const double step = std::clamp(860.0 / count, 4.0, 40.0);
    const double width = left + step * count + 20;
    const double height = top + plot_height + 50;
    const double most = largest(chart);
    const double scale = plot_height / most;
    std::string out;
    open_svg(out, chart, std::max(width, 400.0), height);
    legend(out, chart, left, 16);
    const double base = top + plot_height;
    out += "<line x1=\"" + number(left) + "\" y1=\"" + number(base) + "\" x2=\"" +
           number(left + step * count) + "\" y2=\"" + number(base) + "\" stroke=\"#888\"/>\n";
    out += "<text x=\"" + number(left - 6) + "\" y=\"" + number(top + 4) +
           "\" text-anchor=\"end\">" + number(most) + "</text>\n";
    out += "<text x=\"" + number(left - 6) + "\" y=\"" + number(base) +
           "\" text-anchor=\"end\">0</text>\n";
    const std::size_t label_every =
        std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(70.0 / step)));
    double x = left;
    for (std::size_t i = 0; i < chart.bars.size(); ++i) {
        const Bar& bar = chart.bars[i];
        double y = base;
        for (std::size_t s = 0; s < chart.series.size() && s < bar.values.size(); ++s) {
            double h = bar.values[s] * scale;
            if (bar.values[s] > 0) {
                segment(out, chart.series[s], bar, bar.values[s], x + 1, y - h, step - 2, h);
            }
            y -= h;
        }
        if (i % label_every == 0) {
            out += "<text x=\"" + number(x + step / 2) + "\" y=\"" + number(base + 16) +
                   "\" text-anchor=\"middle\">";
            html::append_escaped(out, bar.label);
            out += "</text>\n";
        }
        x += step;
    }
    out += "</svg>\n";
    return out;
}

} // namespace flowgate::cli::svg
