# The index cache (<stateDir>/index-cache): chunk digests of every file as last hashed, so that a
# restart with an unchanged library re-hashes nothing. Local state, never on the wire. The file is
# a 48-byte header (magic, version, SHA-256 of the rest) followed by one IndexCache message.

@0xd9c128887839ff49;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shoal::peer::library::cache");

struct IndexCache {
  entries @0 :List(Entry);

  struct Entry {
    # A file's digests are reused only while every field below still matches.
    itemId @0 :Text;
    path @1 :Text;        # relative to the item folder
    size @2 :UInt64;
    mtimeNs @3 :Int64;
    ctimeNs @4 :Int64;
    inode @5 :UInt64;
    chunkSize @6 :UInt32;
    hashes @7 :Data;      # ceil(size / chunkSize) concatenated 32-byte SHA-256 digests
  }
}
