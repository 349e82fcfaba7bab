// Tag vocabularies, tags CSVs and the image-folder dataset; see include/cgan/data/tags.hpp.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cgan/data/tags.hpp"
#include "cgan/base/error.hpp"
#include "cgan/data/image.hpp"
#include "cgan/base/io.hpp"

namespace cgan {
namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

// Words of normalised text, split on spaces.
std::vector<std::string> words(const std::string& norm) {
  std::vector<std::string> w;
  std::istringstream is(norm);
  for (std::string t; is >> t;) w.push_back(t);
  return w;
}

// Shortens a quoted piece of user text for messages.
std::string quoted(const std::string& s) {
  std::string t = s.size() > 60 ? s.substr(0, 57) + "..." : s;
  std::string out = "\"";
  for (char c : t) out += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  return out + "\"";
}

std::string list_vocab(const std::vector<std::string>& vocab) {
  std::string s;
  for (size_t i = 0; i < vocab.size(); ++i) s += (i ? ", " : "") + vocab[i];
  return s;
}

// Vocabulary phrases as word sequences, for matching inside text.
struct PhraseMatcher {
  std::vector<std::vector<std::string>> phrases;
  explicit PhraseMatcher(const std::vector<std::string>& vocab) {
    for (auto& p : vocab) phrases.push_back(words(p));
  }
  // The longest phrase matching w[i..]; returns its index (or -1) and its length in words.
  int match(const std::vector<std::string>& w, size_t i, size_t* len) const {
    int best = -1;
    size_t best_len = 0;
    for (size_t k = 0; k < phrases.size(); ++k) {
      const auto& p = phrases[k];
      if (p.size() <= best_len || i + p.size() > w.size()) continue;
      if (std::equal(p.begin(), p.end(), w.begin() + static_cast<std::ptrdiff_t>(i))) {
        best = static_cast<int>(k);
        best_len = p.size();
      }
    }
    *len = best_len;
    return best;
  }
};

std::string read_text(const std::string& path, const std::string& what) { return read_regular_file(path, what); }

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) start = 3;  // UTF-8 BOM
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    if (end == text.size()) break;
    start = end + 1;
  }
  return lines;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_hair_phrase(const std::string& p) { return p.size() >= 5 && p.compare(p.size() - 5, 5, " hair") == 0; }
bool is_eye_phrase(const std::string& p) { return p.size() >= 5 && p.compare(p.size() - 5, 5, " eyes") == 0; }

std::string lower_ext(const fs::path& p) {
  std::string e = p.extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

}  // namespace

// ------------------------------------------------------------------ vocabulary

const std::vector<std::string>& default_hair_tags() {
  static const std::vector<std::string> v = {"orange hair", "white hair", "aqua hair",   "gray hair",
                                             "green hair",  "red hair",   "purple hair", "pink hair",
                                             "blue hair",   "black hair", "brown hair",  "blonde hair"};
  return v;
}

const std::vector<std::string>& default_eye_tags() {
  static const std::vector<std::string> v = {"black eyes",  "orange eyes", "pink eyes",  "yellow eyes", "aqua eyes",
                                             "purple eyes", "green eyes",  "brown eyes", "red eyes",    "blue eyes"};
  return v;
}

std::vector<std::string> default_vocabulary() {
  std::vector<std::string> v = default_hair_tags();
  v.insert(v.end(), default_eye_tags().begin(), default_eye_tags().end());
  return v;
}

std::string normalize_tag(const std::string& phrase) {
  std::string out;
  bool space = false;
  for (char c : phrase) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '_' || std::isspace(u)) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(u));
  }
  return out;
}

std::vector<std::string> check_vocabulary(const std::vector<std::string>& phrases, const std::string& who) {
  if (phrases.empty()) throw Error(cat(who, ": the vocabulary is empty (give at least one tag phrase)"));
  std::vector<std::string> out;
  for (size_t i = 0; i < phrases.size(); ++i) {
    if (!valid_utf8(phrases[i]))  // it would be accepted now and fail every checkpoint write later
      throw Error(cat(who, "[", i, "]: tag phrase is not valid UTF-8 (save the file as UTF-8)"));
    const std::string p = normalize_tag(phrases[i]);
    if (p.empty()) throw Error(cat(who, "[", i, "]: empty tag phrase"));
    for (char c : p)
      if (c == ',' || c == ':' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        throw Error(cat(who, "[", i, "]: tag phrase ", quoted(p),
                        " holds ',', ':' or a control character, which the tags CSV cannot carry"));
    for (size_t j = 0; j < out.size(); ++j)
      if (out[j] == p) throw Error(cat(who, "[", i, "]: tag phrase ", quoted(p), " repeats entry [", j, "]"));
    out.push_back(p);
  }
  return out;
}

std::vector<std::string> read_vocabulary(const std::string& path) {
  return vocabulary_from_text(read_text(path, "vocabulary file"), path);
}

std::vector<std::string> vocabulary_from_text(const std::string& text, const std::string& path) {
  const std::vector<std::string> lines = split_lines(text);
  std::vector<std::string> raw;
  std::vector<size_t> line_of;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string t = trim(lines[i]);
    if (t.empty() || t[0] == '#') continue;
    raw.push_back(t);
    line_of.push_back(i + 1);
  }
  if (raw.empty()) throw Error(cat(path, ": no tag phrase in the vocabulary file (one phrase per line)"));
  try {
    return check_vocabulary(raw, path);
  } catch (const Error& e) {
    // "path[i]: ..." -> "path:line: ..."
    std::string m = e.what();
    const size_t open = path.size();
    if (m.compare(0, open, path) == 0 && open < m.size() && m[open] == '[') {
      const size_t close = m.find(']', open);
      const size_t idx = std::stoul(m.substr(open + 1, close - open - 1));
      m = cat(path, ":", line_of[idx], m.substr(close + 1));
    }
    throw Error(m);
  }
}

void write_vocabulary(const std::string& path, const std::vector<std::string>& vocab) {
  write_file_atomic(path, vocabulary_text(check_vocabulary(vocab, path)));
}

std::string vocabulary_text(const std::vector<std::string>& vocab) {
  std::string text;
  for (auto& p : vocab) text += p + "\n";
  return text;
}

std::vector<float> tags_from_text(const std::string& text, const std::vector<std::string>& vocab) {
  const PhraseMatcher m(vocab);
  std::vector<float> out(vocab.size(), 0.f);
  bool any = false;
  std::string piece;
  std::istringstream is(text);
  auto take = [&](const std::string& raw) {
    const std::string norm = normalize_tag(raw);
    if (norm.empty()) return;
    const std::vector<std::string> w = words(norm);
    for (size_t i = 0; i < w.size();) {
      size_t len = 0;
      const int k = m.match(w, i, &len);
      if (k < 0) {
        std::string rest;
        for (size_t j = i; j < w.size(); ++j) rest += (j > i ? " " : "") + w[j];
        throw Error(cat("unknown tag ", quoted(rest), " in ", quoted(text), " (known tags: ", list_vocab(vocab), ")"));
      }
      out[k] = 1.f;
      any = true;
      i += len;
    }
  };
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i)
    if (i == text.size() || text[i] == ',' || text[i] == ';') {
      take(text.substr(start, i - start));
      start = i + 1;
    }
  if (!any)
    throw Error(
        cat("no tag in ", quoted(text), ": give phrases separated by commas (known tags: ", list_vocab(vocab), ")"));
  return out;
}

std::string tags_to_text(const float* tags, const std::vector<std::string>& vocab) {
  std::string s;
  for (size_t k = 0; k < vocab.size(); ++k)
    if (tags[k] > 0.5f) s += (s.empty() ? "" : ", ") + vocab[k];
  return s;
}

// ------------------------------------------------------------------ tags CSV

std::string id_key(const std::string& id) {
  std::string t = trim(id);
  if (all_digits(t)) {
    const size_t nz = t.find_first_not_of('0');
    t = nz == std::string::npos ? "0" : t.substr(nz);
  }
  return t;
}

TagTable parse_tags_csv(const std::string& text, const std::string& path, const std::vector<std::string>& vocab_in,
                        bool strict) {
  TagTable t;
  t.vocab = check_vocabulary(vocab_in, "vocabulary");
  const size_t V = t.vocab.size();
  const PhraseMatcher m(t.vocab);
  std::unordered_map<std::string, int> vocab_index;
  for (size_t k = 0; k < V; ++k) vocab_index[t.vocab[k]] = static_cast<int>(k);
  std::unordered_map<std::string, size_t> line_of_id;
  const std::vector<std::string> lines = split_lines(text);
  bool first = true;
  for (size_t ln = 0; ln < lines.size(); ++ln) {
    const std::string& line = lines[ln];
    if (trim(line).empty()) continue;
    const bool is_first = first;
    first = false;
    auto bad = [&](const std::string& why) {
      const std::string msg = cat(path, ":", ln + 1, ": ", why);
      if (strict) throw Error(msg);
      t.warnings.push_back(msg + " (line skipped)");
      ++t.malformed;
    };
    const size_t comma = line.find(',');
    if (comma == std::string::npos) {
      bad(cat("no comma: expected id,tags, got ", quoted(line)));
      continue;
    }
    const std::string id = trim(line.substr(0, comma));
    if (id.empty()) {
      bad("empty id before the comma");
      continue;
    }
    if (is_first && normalize_tag(id) == "id") continue;  // header
    std::string rest = trim(line.substr(comma + 1));
    if (rest.size() >= 2 && rest.front() == '"' && rest.back() == '"') {
      std::string u;
      for (size_t i = 1; i + 1 < rest.size(); ++i) {
        u += rest[i];
        if (rest[i] == '"' && rest[i + 1] == '"') ++i;
      }
      rest = u;
    }
    std::vector<float> row(V, 0.f);
    std::string why;
    if (rest.find(':') != std::string::npos || rest.find('\t') != std::string::npos) {
      // Danbooru style: tag:count fields separated by tabs
      size_t start = 0;
      for (size_t i = 0; i <= rest.size() && why.empty(); ++i) {
        if (i < rest.size() && rest[i] != '\t') continue;
        const std::string field = trim(rest.substr(start, i - start));
        start = i + 1;
        if (field.empty()) continue;
        const size_t colon = field.rfind(':');
        if (colon == std::string::npos) {
          why = cat("field ", quoted(field), " is not tag:count");
          break;
        }
        const std::string tag = normalize_tag(field.substr(0, colon));
        const std::string count = trim(field.substr(colon + 1));
        if (tag.empty())
          why = cat("field ", quoted(field), " has an empty tag");
        else if (!all_digits(count))
          why = cat("field ", quoted(field), ": count ", quoted(count), " is not a non-negative integer");
        else if (auto it = vocab_index.find(tag); it != vocab_index.end())
          row[it->second] = 1.f;
      }
    } else {
      std::string plain = rest;  // punctuation separates words: "blue hair, red eyes."
      for (char& ch : plain)
        if (ch == ',' || ch == ';' || ch == '.' || ch == '|' || ch == '/' || ch == '"') ch = ' ';
      const std::vector<std::string> w = words(normalize_tag(plain));
      for (size_t i = 0; i < w.size();) {
        size_t len = 0;
        const int k = m.match(w, i, &len);
        if (k >= 0) {
          row[k] = 1.f;
          i += len;
        } else {
          ++i;
        }
      }
    }
    if (!why.empty()) {
      bad(why);
      continue;
    }
    const std::string key = id_key(id);
    if (auto it = line_of_id.find(key); it != line_of_id.end()) {
      bad(cat("duplicate id ", quoted(id), " (first on line ", it->second, ")"));
      continue;
    }
    line_of_id[key] = ln + 1;
    t.row_of[key] = t.rows();
    t.ids.push_back(id);
    t.tags.insert(t.tags.end(), row.begin(), row.end());
  }
  return t;
}

TagTable read_tags_csv(const std::string& path, const std::vector<std::string>& vocab, bool strict) {
  return parse_tags_csv(read_text(path, "tags CSV"), path, vocab, strict);
}

int hair_phrase_count(const std::vector<std::string>& vocab) {
  int n = 0;
  for (auto& p : vocab) n += is_hair_phrase(p);
  return n ? n : static_cast<int>(vocab.size());
}

std::vector<float> tags_for_label(const std::vector<std::string>& vocab, int label, int k) {
  const bool any_hair = std::any_of(vocab.begin(), vocab.end(), is_hair_phrase);
  std::vector<size_t> labels, eyes;
  for (size_t i = 0; i < vocab.size(); ++i) {
    if (!any_hair || is_hair_phrase(vocab[i])) labels.push_back(i);
    if (any_hair && is_eye_phrase(vocab[i])) eyes.push_back(i);
  }
  CGAN_CHECK(!labels.empty() && label >= 0 && k >= 0, "tags_for_label: empty vocabulary or negative index");
  std::vector<float> t(vocab.size(), 0.f);
  t[labels[static_cast<size_t>(label) % labels.size()]] = 1.f;
  if (!eyes.empty()) t[eyes[static_cast<size_t>(k) % eyes.size()]] = 1.f;
  return t;
}

int label_of_tags(const float* tags, const std::vector<std::string>& vocab) {
  const bool any_hair = std::any_of(vocab.begin(), vocab.end(), is_hair_phrase);
  int label = 0;
  for (size_t k = 0; k < vocab.size(); ++k) {
    if (any_hair && !is_hair_phrase(vocab[k])) continue;
    if (tags[k] > 0.5f) return label;
    ++label;
  }
  return label;  // none set: the extra class
}

// ------------------------------------------------------------------ image folder

HostDataset load_image_folder(const ImageFolderSpec& spec, std::ostream& log) {
  check_image_folder_args(spec.dir, spec.height, spec.width, spec.lo, spec.hi, "image folder");
  std::error_code ec;
  const std::vector<std::string> vocab =
      check_vocabulary(spec.vocab.empty() ? default_vocabulary() : spec.vocab, "data.vocabulary");

  std::string tags_path = spec.tags;
  if (tags_path.empty()) {
    const fs::path inside = fs::path(spec.dir) / "tags.csv";
    const fs::path beside = fs::path(spec.dir) / ".." / "tags.csv";
    // exists, not is_regular_file: a FIFO or folder there is named as such by the reader
    if (fs::exists(inside, ec))
      tags_path = inside.string();
    else if (fs::exists(beside, ec))
      tags_path = beside.string();
    else
      throw Error(
          cat("data.tags: no tags CSV given and neither ", inside.string(), " nor ", beside.string(), " exists"));
  }
  TagTable table;
  try {
    table = read_tags_csv(tags_path, vocab, spec.strict);
  } catch (const Error& e) {
    throw Error(cat("data.tags: ", e.what()));
  }
  for (auto& w : table.warnings) log << "warning: data.tags: " << w << "\n";

  // the image files, in name order
  std::vector<fs::path> files;
  for (fs::directory_iterator it(spec.dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string e = lower_ext(it->path());
    if (e == ".png" || e == ".jpg" || e == ".jpeg") files.push_back(it->path());
  }
  if (ec) throw Error(cat("data.dir: ", spec.dir, ": cannot list the folder: ", ec.message()));
  std::sort(files.begin(), files.end());

  const int H = spec.height, W = spec.width, V = static_cast<int>(vocab.size());
  const size_t dim = 3 * static_cast<size_t>(H) * W;

  HostDataset d;
  d.name = spec.dir;
  d.channels = 3;
  d.height = H;
  d.width = W;
  d.tag_dim = V;
  d.vocab = vocab;
  d.x.reserve(files.size() * dim);  // no regrowth copies of a multi-GB buffer
  int unreadable = 0, untagged = 0, no_vocab_tag = 0, duplicate = 0;
  std::unordered_map<std::string, std::string> file_of_id;
  auto skip = [&](const std::string& msg, int& counter) {
    if (spec.strict) throw Error(cat("data.dir: ", msg, " (data.strict is set)"));
    log << "warning: data.dir: " << msg << " (skipped)\n";
    ++counter;
  };
  for (const fs::path& f : files) {
    const std::string name = f.string();
    const std::string key = id_key(f.stem().string());
    if (auto it = file_of_id.find(key); it != file_of_id.end()) {
      skip(cat(name, ": same id as ", it->second), duplicate);
      continue;
    }
    file_of_id[key] = name;
    const auto row = table.row_of.find(key);
    if (row == table.row_of.end()) {
      skip(cat(name, ": id ", quoted(f.stem().string()), " has no row in ", tags_path), untagged);
      continue;
    }
    const float* tags = table.row(row->second);
    if (std::none_of(tags, tags + V, [](float v) { return v > 0.5f; })) {
      ++no_vocab_tag;
      continue;
    }
    Image img;
    try {
      img = read_image(name);
    } catch (const Error& e) {
      skip(e.what(), unreadable);
      continue;
    }
    const size_t base = d.x.size();
    d.x.resize(base + dim);
    image_to_rgb_planes(img, W, H, spec.lo, spec.hi, d.x.data() + base);
    d.tags.insert(d.tags.end(), tags, tags + V);
    d.y.push_back(label_of_tags(tags, vocab));
    ++d.count;
  }
  d.skipped = unreadable + untagged + no_vocab_tag + duplicate;
  if (d.count == 0)
    throw Error(cat("data.dir: ", spec.dir, ": no usable image (", files.size(), " image files, ", unreadable,
                    " unreadable, ", untagged, " without a row in ", tags_path, ", ", no_vocab_tag,
                    " without a vocabulary tag)"));
  const int H_labels = hair_phrase_count(vocab);
  d.num_classes = H_labels;
  for (int32_t y : d.y)
    if (y >= H_labels) d.num_classes = H_labels + 1;  // an extra class: no hair phrase set
  log << "data: " << spec.dir << ": " << d.count << " images loaded (" << W << "x" << H << " RGB, tags from "
      << tags_path << ", " << V << "-phrase vocabulary); skipped " << d.skipped << " (" << unreadable << " unreadable, "
      << untagged << " without a tags row, " << no_vocab_tag << " without a vocabulary tag, " << duplicate
      << " duplicate ids), " << table.malformed << " malformed CSV lines\n";
  return d;
}

}  // namespace cgan
