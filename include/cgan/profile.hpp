#pragma once
namespace cgan { struct ProfileRange { explicit ProfileRange(const char*) {} }; }
