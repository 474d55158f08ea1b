//! `skiff-dns --dir DIR --listen IP [--listen IP]... [--ready-fd N]`: a network's DNS server,
//! started by `skiff_dns::add` (see the library's docs).

fn main() {
    std::process::exit(skiff_dns::server::main());
}
