// SVG line charts (include/mpsnn/io.h): the trainer's training curve. Hand-written SVG, no dependency.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "mpsnn/io.h"

namespace mpsnn {

namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  /// Pads an empty or flat range so that it can be scaled.
  void settle() {
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
  }
};

/// About five round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  const double raw = (hi - lo) / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  std::vector<double> out;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push_back(v);
  return out;
}

std::string number(double v) {
  std::ostringstream s;
  s.precision(4);
  s << (std::fabs(v) < 1e-12 ? 0.0 : v);
  return s.str();
}

}  // namespace

void writeLineChartSvg(const std::string& path, const std::string& title, const std::string& xLabel,
                       const std::string& leftLabel, const std::string& rightLabel,
                       const std::vector<ChartSeries>& series) {
  const double W = 800, H = 480, left = 70, right = 70, top = 50, bottom = 60;
  const double pw = W - left - right, ph = H - top - bottom;
  Range xr, yl, yr;
  bool anyRight = false;
  for (const auto& s : series) {
    for (double v : s.x) xr.add(v);
    for (double v : s.y) (s.rightAxis ? yr : yl).add(v);
    anyRight |= s.rightAxis;
  }
  xr.settle();
  yl.settle();
  yr.settle();
  auto X = [&](double v) { return left + (v - xr.lo) / (xr.hi - xr.lo) * pw; };
  auto Y = [&](double v, const Range& r) { return top + ph - (v - r.lo) / (r.hi - r.lo) * ph; };

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
      << "\" viewBox=\"0 0 " << W << ' ' << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg << "<text x=\"" << W / 2 << "\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">" << escape(title)
      << "</text>\n";
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
      << "\" fill=\"none\" stroke=\"#444\"/>\n";
  for (double t : ticks(xr.lo, xr.hi))
    svg << "<line x1=\"" << X(t) << "\" y1=\"" << top + ph << "\" x2=\"" << X(t) << "\" y2=\"" << top + ph + 5
        << "\" stroke=\"#444\"/><text x=\"" << X(t) << "\" y=\"" << top + ph + 18
        << "\" text-anchor=\"middle\">" << number(t) << "</text>\n";
  for (double t : ticks(yl.lo, yl.hi))
    svg << "<line x1=\"" << left << "\" y1=\"" << Y(t, yl) << "\" x2=\"" << left + pw << "\" y2=\""
        << Y(t, yl) << "\" stroke=\"#ddd\"/><text x=\"" << left - 6 << "\" y=\"" << Y(t, yl) + 4
        << "\" text-anchor=\"end\">" << number(t) << "</text>\n";
  if (anyRight)
    for (double t : ticks(yr.lo, yr.hi))
      svg << "<text x=\"" << left + pw + 6 << "\" y=\"" << Y(t, yr) + 4 << "\">" << number(t) << "</text>\n";
  svg << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 15 << "\" text-anchor=\"middle\">"
      << escape(xLabel) << "</text>\n";
  svg << "<text transform=\"translate(18," << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
      << escape(leftLabel) << "</text>\n";
  if (anyRight)
    svg << "<text transform=\"translate(" << W - 14 << ',' << top + ph / 2
        << ") rotate(90)\" text-anchor=\"middle\">" << escape(rightLabel) << "</text>\n";
  double legendY = top + 16;
  for (const auto& s : series) {
    const Range& r = s.rightAxis ? yr : yl;
    svg << "<polyline fill=\"none\" stroke=\"" << escape(s.color) << "\" stroke-width=\"1.5\" points=\"";
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) svg << X(s.x[i]) << ',' << Y(s.y[i], r) << ' ';
    svg << "\"/>\n";
    if (s.x.size() == 1 || s.x.size() < 30)  // few points (per-epoch values): mark them
      for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
        svg << "<circle cx=\"" << X(s.x[i]) << "\" cy=\"" << Y(s.y[i], r) << "\" r=\"3\" fill=\""
            << escape(s.color) << "\"/>\n";
    svg << "<line x1=\"" << left + 12 << "\" y1=\"" << legendY << "\" x2=\"" << left + 36 << "\" y2=\""
        << legendY << "\" stroke=\"" << escape(s.color) << "\" stroke-width=\"2\"/><text x=\"" << left + 42
        << "\" y=\"" << legendY + 4 << "\">" << escape(s.name) << "</text>\n";
    legendY += 18;
  }
  svg << "</svg>\n";
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw FileError(path + ": cannot write");
  out << svg.str();
  if (!out.flush()) throw FileError(path + ": write failed");
}

}  // namespace mpsnn
