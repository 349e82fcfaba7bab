// Tagged image data: tag vocabularies, tag CSVs and the tagged image-folder loader (src/data/tags.cpp;
// the procedural faces are cgan/data/anime_faces.hpp). See docs/DECISIONS.md ("Anime data").
//
// Tag phrases are compared after normalisation: ASCII lower case, '_' read as a space, runs of
// whitespace collapsed to one space, no leading or trailing space ("Blue_Hair " -> "blue hair").
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <unordered_map>
#include <vector>

#include "cgan/data/data.hpp"

namespace cgan {

// ------------------------------------------------------------------ vocabulary

// The colour tags of the public anime-face sets: 12 hair colours, then 10 eye colours.
const std::vector<std::string>& default_hair_tags();  // "orange hair" ... "blonde hair"
const std::vector<std::string>& default_eye_tags();   // "black eyes" ... "blue eyes"
std::vector<std::string> default_vocabulary();        // hair tags then eye tags (22 phrases)

std::string normalize_tag(const std::string& phrase);

// Checks and normalises a vocabulary: non-empty, every phrase non-empty after normalisation, without
// ',', ':' or control characters, no duplicates. `who` prefixes the one-line errors.
std::vector<std::string> check_vocabulary(const std::vector<std::string>& phrases, const std::string& who);

// A vocabulary file: one phrase per line; blank lines and lines starting with '#' are ignored.
// Errors name path:line (duplicate or invalid phrase) or the path (missing file, no phrase).
std::vector<std::string> read_vocabulary(const std::string& path);
// Writes the (normalised) phrases one per line, atomically; read_vocabulary reads them back in order.
void write_vocabulary(const std::string& path, const std::vector<std::string>& vocab);
// The same format as text (checkpoints store it as metadata): vocabulary_text writes it,
// vocabulary_from_text reads and checks it, `path` naming the source in errors.
std::string vocabulary_text(const std::vector<std::string>& vocab);
std::vector<std::string> vocabulary_from_text(const std::string& text, const std::string& path);

// Tag text as `sample --tags` takes it: phrases separated by ',' or ';' ("blue hair, yellow eyes");
// a piece that is not one phrase may be several in a row ("blue hair yellow eyes"). Returns the
// multi-hot vector over `vocab` (1 for each phrase named). An empty text or an unknown phrase is a
// one-line error; the latter lists the vocabulary.
std::vector<float> tags_from_text(const std::string& text, const std::vector<std::string>& vocab);
// The phrases of a multi-hot vector (entries > 0.5), joined by ", ".
std::string tags_to_text(const float* tags, const std::vector<std::string>& vocab);

// ------------------------------------------------------------------ tags CSV

// One row per line, `id,<tags>`, the format detected per line:
//   colour text   `7,blue hair yellow eyes`: the vocabulary phrases found in the text (matched on
//                 word boundaries, longest phrase first; other words and the punctuation , ; . | /
//                 are ignored, so "long blonde hair, red eyes" gives blonde hair + red eyes);
//   Danbooru      `7,blue hair:1234<TAB>smile:99`: TAB-separated `tag:count` fields (the count after
//                 the last ':', a non-negative integer, is checked and ignored); tags outside the
//                 vocabulary are dropped. A line is Danbooru-style when its text holds ':' or a TAB.
// A UTF-8 BOM, '\r' line ends, blank lines, and a first line whose id is "id" (a header) are
// skipped; a tag text wrapped in double quotes is unquoted. Malformed lines - no comma, empty id,
// a field that is not `tag:count`, a non-numeric count, an id already seen - are skipped with a
// warning "path:line: ..." in `warnings` (the first occurrence of an id wins), or, when `strict`,
// are a cgan::Error with that message. Ids are compared as id_key() gives them.
struct TagTable {
  std::vector<std::string> vocab;
  std::vector<std::string> ids;                 // row order
  std::vector<float> tags;                      // ids.size() * vocab.size(), 0/1
  std::unordered_map<std::string, int> row_of;  // id_key(id) -> row
  std::vector<std::string> warnings;            // one line per malformed line skipped
  int malformed = 0;                            // lines skipped
  int rows() const { return static_cast<int>(ids.size()); }
  const float* row(int r) const { return tags.data() + static_cast<size_t>(r) * vocab.size(); }
};
TagTable parse_tags_csv(const std::string& text, const std::string& path, const std::vector<std::string>& vocab,
                        bool strict = false);
TagTable read_tags_csv(const std::string& path, const std::vector<std::string>& vocab, bool strict = false);

// The key an id (a CSV id or an image's file stem) is matched by: trimmed, and an all-digit id
// without leading zeros ("007" and "7" match).
std::string id_key(const std::string& id);

// The label (y) of a tag vector: the index, among the vocabulary's "hair" phrases (those ending in
// " hair"; all phrases when none does), of the first one set; hair_phrase_count(vocab) when none is.
int hair_phrase_count(const std::vector<std::string>& vocab);
int label_of_tags(const float* tags, const std::vector<std::string>& vocab);
// The tag vector that stands for `label` (label_of_tags' inverse): its hair phrase set, and, when
// the vocabulary has hair phrases, the k-th phrase ending in " eyes" (k mod their count) too, so
// that images of one label cycle through the eye colours. Sample grids and the evaluator use it.
std::vector<float> tags_for_label(const std::vector<std::string>& vocab, int label, int k);

// ------------------------------------------------------------------ image folder

struct ImageFolderSpec {
  std::string dir;                 // images: *.png, *.jpg, *.jpeg (any case), not recursive
  std::string tags;                // tags CSV; "" = <dir>/tags.csv, else <dir>/../tags.csv
  int height = 96, width = 96;     // every image is resized to this (area / bilinear)
  float lo = -1.f, hi = 1.f;       // pixel p in 0..255 -> lo + (hi - lo) * p / 255
  bool strict = false;             // unreadable image / malformed CSV line / untagged image: error
  std::vector<std::string> vocab;  // empty = default_vocabulary()
};

// RGB (grey images are replicated), NCHW, files in name order; id = file stem, matched to the CSV
// id. Skipped with one warning line each on `log` (errors when spec.strict): unreadable or corrupt
// images, a second file with the same id, images without a tags row, malformed CSV lines. Images
// whose row holds no vocabulary tag are left out too (counted, not warned per file). A summary line
// with the counts goes to `log`; HostDataset::skipped counts every image file left out. Errors
// (one line) name the config key: data.dir, data.tags.
HostDataset load_image_folder(const ImageFolderSpec& spec, std::ostream& log);

}  // namespace cgan
