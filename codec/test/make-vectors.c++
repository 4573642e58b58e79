// Writes the golden vectors: for every Frame kind, <stem>.bin (one frame) and <stem>.txt (its text
// form as `capnp decode schema/shoal.capnp Frame` prints it).
//   shoal-make-vectors codec/test/vectors
#include <capnp/pretty-print.h>
#include <kj/filesystem.h>
#include <kj/main.h>
#include <shoal/codec/frame.h>

#include "samples.h"

namespace shoal::codec {

class MakeVectors {
 public:
  explicit MakeVectors(kj::ProcessContext& context) : context(context) {}

  kj::MainFunc getMain() {
    return kj::MainBuilder(context, "shoal-make-vectors",
                           "Writes one golden frame per message kind (.bin) and its text (.txt).")
        .expectArg("<dir>", KJ_BIND_METHOD(*this, write))
        .build();
  }

 private:
  kj::ProcessContext& context;

  kj::MainBuilder::Validity write(kj::StringPtr dirName) {
    auto fs = kj::newDiskFilesystem();
    auto dir = fs->getRoot().openSubdir(fs->getCurrentPath().eval(dirName),
                                        kj::WriteMode::CREATE | kj::WriteMode::MODIFY);
    for (auto kind : samples::allKinds()) {
      auto message = samples::make(kind);
      auto stem = samples::fileStem(kind);
      auto text = kj::str(capnp::prettyPrint(message->getRoot<wire::Frame>().asReader()), "\n");
      dir->openFile(kj::Path(kj::str(stem, ".bin")), kj::WriteMode::CREATE | kj::WriteMode::MODIFY)
          ->writeAll(encodeFrame(*message));
      dir->openFile(kj::Path(kj::str(stem, ".txt")), kj::WriteMode::CREATE | kj::WriteMode::MODIFY)
          ->writeAll(text);
      context.warning(kj::str("wrote ", stem, ".bin and ", stem, ".txt"));
    }
    return true;
  }
};

}  // namespace shoal::codec

KJ_MAIN(shoal::codec::MakeVectors)
