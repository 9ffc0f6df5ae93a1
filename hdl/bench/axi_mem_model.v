// codesign: behavioural AXI4 memory model for the whole-layer accelerator's testbench (simulation only).
//
// Timing (cycle t lies between rising edges t and t + 1; a handshake in cycle t completes at edge t + 1):
//  * one data bus for both channels: BW = BW_NUM / BW_DEN bytes per cycle is the memory's TOTAL bandwidth,
//    arbitrated with a fixed priority for writes. A write stream's data phase is every cycle in which wvalid
//    is high (the DMA offers a stream's beats back to back, from its first to its last): the bus is the
//    write channel's then, and a read moves no beat in it; a read's pacing counts only the other (FREE)
//    cycles. Deterministic, and overlap hides latency (a read's address and LAT cycles, a write's response)
//    and keeps the bus busy without ever moving more than BW bytes a cycle on average.
//  * reads: a stream starts with the address handshake that finds the read channel idle, completing at
//    edge e, or with the first burst of a command (aruser high) once the burst before it has its last beat
//    (then e + LAT is the later of that edge and the burst's address edge + LAT): each command's data is
//    paced as if alone, after the data of the commands before it. Its beat j (counted over all bursts of
//    the stream) is presented in the first free cycle in
//    which the count of free cycles from e + LAT on reaches ceil((j + 1) * BUS_BYTES / BW) (alone: cycle
//    e + LAT + ceil((j + 1) * BUS_BYTES / BW) - 1), and not before LAT cycles after its own burst's
//    address; beats wait for rready. rvalid is combinational: a beat due in a write cycle waits.
//  * writes: a stream starts in the first cycle t0 with wvalid high on an idle write channel; its beat j is
//    accepted (wready high) in cycle t0 - 1 + ceil((j + 1) * BUS_BYTES / BW) or later; a burst's response
//    is presented LAT + 1 cycles after the cycle its last beat was accepted.
//  * +STALL=P (percent, default 0) with +SEED=S adds random wait cycles on every channel (arready,
//    awready, rvalid, wready, bvalid): functional runs; the outputs must not change.
// Plusargs: +LAT=, +BW_NUM=, +BW_DEN=, +STALL=, +SEED=, +DRAM=<hex file to load>.
`timescale 1ns/1ps
module codesign_axi_mem #(
    parameter BUS_BYTES = 16,
    parameter DEPTH = 65536,
    parameter ADDR_BITS = 32
) (
    input clk,
    input rst,
    input [ADDR_BITS-1:0] araddr, input [7:0] arlen, input aruser, input arvalid, output arready,
    output reg [BUS_BYTES*8-1:0] rdata, output [1:0] rresp, output reg rlast, output rvalid, input rready,
    input [ADDR_BITS-1:0] awaddr, input [7:0] awlen, input awvalid, output awready,
    input [BUS_BYTES*8-1:0] wdata, input [BUS_BYTES-1:0] wstrb, input wlast, input wvalid, output wready,
    output [1:0] bresp, output reg bvalid, input bready
);
    localparam SHIFT = $clog2(BUS_BYTES);
    localparam Q = 1024;  // outstanding bursts
    reg [BUS_BYTES*8-1:0] mem [0:DEPTH-1];

    integer LAT, BW_NUM, BW_DEN, STALL, SEED;
    reg [1023:0] dram_file;
    initial begin
        if (!$value$plusargs("LAT=%d", LAT)) LAT = 0;
        if (!$value$plusargs("BW_NUM=%d", BW_NUM)) BW_NUM = BUS_BYTES;
        if (!$value$plusargs("BW_DEN=%d", BW_DEN)) BW_DEN = 1;
        if (!$value$plusargs("STALL=%d", STALL)) STALL = 0;
        if (!$value$plusargs("SEED=%d", SEED)) SEED = 1;
        if ($value$plusargs("DRAM=%s", dram_file)) $readmemh(dram_file, mem);
    end

    reg [63:0] now;  // the current cycle
    always @(posedge clk) now <= rst ? 64'd0 : now + 64'd1;

    // ceil(x * BUS_BYTES * BW_DEN / BW_NUM)
    function [63:0] due;
        input [63:0] beats;
        begin
            due = (beats * BUS_BYTES * BW_DEN + BW_NUM - 1) / BW_NUM;
        end
    endfunction

    // random stall bits, redrawn every cycle from a xorshift32 generator (the same sequence on every
    // simulator, unlike $random, whose algorithm is the simulator's own)
    function [31:0] xorshift;
        input [31:0] x;
        reg [31:0] y;
        begin
            y = x ^ (x << 13);
            y = y ^ (y >> 17);
            xorshift = y ^ (y << 5);
        end
    endfunction
    reg st_ar, st_aw, st_r, st_w, st_b;
    reg [31:0] rs1, rs2, rs3, rs4, rs5;
    reg [31:0] rnd;
    initial rnd = 0;
    always @(posedge clk) begin
        if (rnd == 0) rnd = SEED == 0 ? 32'h2545F491 : SEED;
        rs1 = xorshift(rnd);
        rs2 = xorshift(rs1);
        rs3 = xorshift(rs2);
        rs4 = xorshift(rs3);
        rs5 = xorshift(rs4);
        rnd = rs5;
        st_ar <= STALL > 0 && (rs1 % 100) < STALL;
        st_aw <= STALL > 0 && (rs2 % 100) < STALL;
        st_r <= STALL > 0 && (rs3 % 100) < STALL;
        st_w <= STALL > 0 && (rs4 % 100) < STALL;
        st_b <= STALL > 0 && (rs5 % 100) < STALL;
    end

    assign rresp = 2'b00;
    assign bresp = 2'b00;

    // ---------------------------------------------------------------- reads
    reg [ADDR_BITS-1:0] rq_addr [0:Q-1];
    reg [8:0] rq_len [0:Q-1];
    reg [63:0] rq_ready [0:Q-1];  // earliest cycle of the burst's first beat
    reg rq_first [0:Q-1];  // the burst is its command's first (aruser)
    integer rq_head, rq_tail;
    reg [8:0] r_pos;  // beat within the head burst
    reg [63:0] r_start;  // stream start cycle (edge of the first address + LAT)
    reg [63:0] r_beats;  // beats of the stream presented so far
    reg r_pend;  // a beat is due this cycle (presented unless the write channel has the bus)
    assign rvalid = r_pend && !wvalid;
    assign arready = !st_ar && (rq_tail - rq_head) < Q;
    initial begin rq_head = 0; rq_tail = 0; r_pos = 0; r_pend = 0; rlast = 0; r_beats = 0; end
    always @(posedge clk) begin
        if (rst) begin
            rq_head = 0; rq_tail = 0; r_pos = 0; r_pend <= 0; r_beats = 0;
        end else begin
            // the beat presented in the last cycle was taken
            if (rvalid && rready) begin
                if (r_pos == rq_len[rq_head % Q]) begin
                    rq_head = rq_head + 1;
                    r_pos = 0;
                    // the next command's first burst: its data paced from its own start, as alone
                    if (rq_head != rq_tail && rq_first[rq_head % Q]) begin
                        r_start = now > rq_ready[rq_head % Q] ? now : rq_ready[rq_head % Q];
                        r_beats = 0;
                    end
                end else begin
                    r_pos = r_pos + 1;
                end
            end
            // a cycle of the stream's data phase that the write channel had: not a free one
            if (rq_head != rq_tail && now >= r_start + 1 && wvalid) r_start = r_start + 1;
            // an address handshake in the last cycle
            if (arvalid && arready) begin
                if (rq_head == rq_tail && !(r_pend && !(rvalid && rready))) begin
                    r_start = now + LAT;
                    r_beats = 0;
                end
                rq_addr[rq_tail % Q] = araddr;
                rq_len[rq_tail % Q] = arlen;
                rq_ready[rq_tail % Q] = now + LAT;
                rq_first[rq_tail % Q] = aruser;
                rq_tail = rq_tail + 1;
            end
            // present the next beat
            if (r_pend && !(rvalid && rready)) begin
                // hold: not taken (rready low, or a write cycle)
            end else if (rq_head != rq_tail && !st_r
                         && now >= r_start + due(r_beats + 1) - 1
                         && (r_pos != 0 || now >= rq_ready[rq_head % Q])) begin
                r_pend <= 1;
                rdata <= mem[(rq_addr[rq_head % Q] >> SHIFT) + r_pos];
                rlast <= (r_pos == rq_len[rq_head % Q]);
                r_beats = r_beats + 1;
            end else begin
                r_pend <= 0;
            end
        end
    end

    // ---------------------------------------------------------------- writes
    reg [ADDR_BITS-1:0] wq_addr [0:Q-1];
    reg [8:0] wq_len [0:Q-1];
    integer wq_head, wq_tail;  // bursts whose address came
    reg [8:0] w_pos;  // beat within the head burst
    reg [63:0] bq_time [0:Q-1];  // when each burst's response may go out
    integer bq_head, bq_tail;
    reg w_busy;  // a write stream is running
    reg [63:0] w_start;
    reg [63:0] w_beats;
    integer w_open;  // bursts with beats not all accepted
    initial begin wq_head = 0; wq_tail = 0; w_pos = 0; bq_head = 0; bq_tail = 0; w_busy = 0; w_beats = 0;
                  bvalid = 0; end
    assign awready = !st_aw && (wq_tail - wq_head) < Q;
    // the first beat of a stream may be taken in the cycle it is offered
    wire [63:0] w_due = w_busy ? (w_start + due(w_beats + 1) - 1) : (now + due(1) - 1);
    assign wready = wvalid && !st_w && now >= w_due && (wq_head != wq_tail || (awvalid && awready));
    always @(posedge clk) begin
        if (rst) begin
            wq_head = 0; wq_tail = 0; w_pos = 0; bq_head = 0; bq_tail = 0; w_busy = 0; bvalid <= 0;
        end else begin
            if (awvalid && awready) begin
                wq_addr[wq_tail % Q] = awaddr;
                wq_len[wq_tail % Q] = awlen;
                wq_tail = wq_tail + 1;
            end
            if (wvalid && !w_busy) begin  // the stream starts in the first cycle data is offered
                w_busy = 1;
                w_start = now;
                w_beats = 0;
            end
            if (wvalid && wready) begin
                mem[(wq_addr[wq_head % Q] >> SHIFT) + w_pos] = wdata;
                w_beats = w_beats + 1;
                if (w_pos == wq_len[wq_head % Q]) begin
                    bq_time[bq_tail % Q] = now + LAT;  // presented LAT + 1 cycles after the accept cycle
                    bq_tail = bq_tail + 1;
                    wq_head = wq_head + 1;
                    w_pos = 0;
                end else begin
                    w_pos = w_pos + 1;
                end
            end
            if (bvalid && bready) bq_head = bq_head + 1;
            if (bvalid && !bready) begin
                // hold
            end else if (bq_head != bq_tail && !st_b && now >= bq_time[bq_head % Q]) begin
                bvalid <= 1;
            end else begin
                bvalid <= 0;
            end
            if (w_busy && wq_head == wq_tail && bq_head == bq_tail && !(bvalid && !bready)) w_busy = 0;
        end
    end
endmodule
