//! Shared k-quant helpers (make_qx_quants, make_qkx2_quants, make_q3_quants, …): being written now.
