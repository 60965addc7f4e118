use super::testutil::*;
